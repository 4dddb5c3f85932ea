package snapshot

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSortEntries(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var tmp []Entry
	for _, n := range []int{0, 1, 2, 255, 256, 257, 1000, 100_000} {
		for _, keys := range []func() uint64{r.Uint64, func() uint64 { return r.Uint64() & 0xff00ff }, func() uint64 { return 7 }} {
			es := make([]Entry, n)
			for i := range es {
				es[i] = Entry{Key: keys(), Content: uint64(i)}
			}
			want := slices.Clone(es)
			slices.SortStableFunc(want, func(x, y Entry) int {
				switch {
				case x.Key < y.Key:
					return -1
				case x.Key > y.Key:
					return 1
				}
				return 0
			})
			tmp = sortEntries(es, tmp)
			if !slices.Equal(es, want) {
				t.Fatalf("%d entries: not sorted, or entries lost", n)
			}
		}
	}
}

func BenchmarkSortEntries800k(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	src := make([]Entry, 800_000)
	for i := range src {
		src[i] = Entry{Key: r.Uint64(), Content: r.Uint64()}
	}
	es := make([]Entry, len(src))
	b.Run("radix", func(b *testing.B) {
		var tmp []Entry
		for b.Loop() {
			copy(es, src)
			tmp = sortEntries(es, tmp)
		}
	})
	b.Run("slices.SortFunc", func(b *testing.B) {
		for b.Loop() {
			copy(es, src)
			slices.SortFunc(es, func(x, y Entry) int {
				if x.Key < y.Key {
					return -1
				}
				if x.Key > y.Key {
					return 1
				}
				return 0
			})
		}
	})
}
