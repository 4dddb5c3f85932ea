package diff

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// scan is the one pass over the new export.
func (r *run) scan(ctx context.Context) error {
	next := prefetch(r.in.Next)
	defer next.stop()
	for n := 0; ; n++ {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("diff: export %s: %w", r.in.ExportID, err)
			}
		}
		rec, err := next.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("diff: read export %s: %w", r.in.ExportID, err)
		}
		r.any = true
		e := rec.Entity()
		i, _ := snapshot.EntityIndex(e)
		key := rec.Key()
		kh := r.h.Key(e, key)
		pos, old, found := r.prev.Lookup(i, kh)
		if found {
			if r.seen[i].get(pos) {
				r.duplicate(i, e, key, rec.Line)
				continue
			}
			r.seen[i].set(pos)
		} else {
			if r.created == nil {
				r.created = make(map[uint64]struct{})
			}
			if _, dup := r.created[kh]; dup {
				r.duplicate(i, e, key, rec.Line)
				continue
			}
			r.created[kh] = struct{}{}
		}
		var later bool
		var given []string
		if m := rec.Membership; m != nil {
			// The marks are the diff's alone: whatever the reader's
			// record says is put back after the encoding.
			marks, now := r.markNow(m, key)
			if now {
				r.findings.count(marks)
			}
			later, given = !now, m.Incomplete
			m.Incomplete = marks
		}
		ch, obj, err := r.h.Content(rec)
		if rec.Membership != nil {
			rec.Membership.Incomplete = given
		}
		if err != nil {
			return fmt.Errorf("diff: export %s line %d: %w", r.in.ExportID, rec.Line, err)
		}
		if later {
			if err := r.deferMembership(kh, key, obj, rec.Membership.IDType == pifu.IDTypeGroup); err != nil {
				return err
			}
			continue
		}
		if err := r.place(i, e, kh, key, pos, old, found, ch, obj); err != nil {
			return err
		}
	}
	if err := r.resolveDeferred(ctx); err != nil {
		return err
	}
	for _, sf := range r.upserts {
		if sf != nil {
			if err := sf.flush(); err != nil {
				return spoolErr(err)
			}
		}
	}
	return nil
}

// place counts a record of the new export whose content is known (the
// previous snapshot's entry at pos, with content old, when found) and
// spools it unless it is unchanged.
func (r *run) place(i int, e pifu.Entity, kh uint64, key string, pos int, old uint64, found bool, ch uint64, obj []byte) error {
	op := Created
	switch {
	case found && ch == old:
		r.counts[i].Unchanged++
		return nil
	case found:
		op = Updated
		r.counts[i].Updated++
		r.upd[i].set(pos)
		r.updates[i] = append(r.updates[i], update{pos, ch})
	default:
		r.counts[i].Created++
		r.b.Add(i, kh, ch)
	}
	if r.upserts[i] == nil {
		var err error
		if r.upserts[i], err = r.sp.create(string(e) + ".upserts"); err != nil {
			return spoolErr(err)
		}
	}
	fr := frame{op: op, keyHash: kh, content: ch, key: key, object: obj,
		id: r.ids.id(r.in.Tenant, r.in.ExportID, e, key, op, ch, r.base)}
	if _, err := r.upserts[i].write(fr); err != nil {
		return spoolErr(err)
	}
	return nil
}

func (r *run) duplicate(i int, e pifu.Entity, key string, line int) {
	r.counts[i].Duplicates++
	if len(r.dups) < MaxDuplicates {
		r.dups = append(r.dups, Duplicate{Entity: e, Key: key, Line: line})
	}
}

type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) get(i int) bool { return b[i>>6]&(1<<(uint(i)&63)) != 0 }
func (b bitset) set(i int)      { b[i>>6] |= 1 << (uint(i) & 63) }

// prefetcher reads records in a goroutine of its own, a batch ahead, so that
// parsing (the decoder) and hashing (the diff) use two cores. The reader's
// Next is called from that goroutine only, never concurrently.
type prefetcher struct {
	out  chan prefetched
	free chan []pifu.Record
	quit chan struct{}
	wg   sync.WaitGroup
	cur  []pifu.Record
	i    int
	err  error
}

type prefetched struct {
	recs []pifu.Record
	err  error // set on the last batch: io.EOF or the reader's error
}

const prefetchBatch = 256

func prefetch(r RecordReader) *prefetcher {
	p := &prefetcher{out: make(chan prefetched, 4), free: make(chan []pifu.Record, 6), quit: make(chan struct{})}
	p.wg.Go(func() {
		defer close(p.out)
		for {
			var buf []pifu.Record
			select {
			case buf = <-p.free:
			default:
				buf = make([]pifu.Record, 0, prefetchBatch)
			}
			var err error
			for len(buf) < prefetchBatch {
				rec, e := r.Next()
				if e != nil {
					err = e
					break
				}
				buf = append(buf, rec)
			}
			select {
			case p.out <- prefetched{buf, err}:
			case <-p.quit:
				return
			}
			if err != nil {
				return
			}
		}
	})
	return p
}

// Next returns the records in the reader's order, then its final error.
func (p *prefetcher) Next() (pifu.Record, error) {
	for p.i == len(p.cur) {
		if p.err != nil {
			return pifu.Record{}, p.err
		}
		if p.cur != nil {
			clear(p.cur) // let the records go
			select {
			case p.free <- p.cur[:0]:
			default:
			}
		}
		b, ok := <-p.out
		if !ok {
			p.cur, p.i, p.err = nil, 0, io.ErrUnexpectedEOF // unreachable: the last batch carries err
			continue
		}
		p.cur, p.i, p.err = b.recs, 0, b.err
	}
	rec := p.cur[p.i]
	p.i++
	return rec, nil
}

// stop ends the goroutine and waits for it: it returns once the reader's
// Next call in progress, if any, has returned.
func (p *prefetcher) stop() {
	close(p.quit)
	p.wg.Wait()
}
