package diff

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// replay emits the spooled changes in order.
func (r *run) replay(ctx context.Context) error {
	send := func(e pifu.Entity, fr frame, previous json.RawMessage) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("diff: export %s: %w", r.in.ExportID, err)
		}
		r.emitted++
		c := Change{
			ID:          hex.EncodeToString(fr.id[:]),
			Seq:         r.emitted,
			Entity:      e,
			Op:          fr.op,
			Key:         fr.key,
			ContentHash: fr.content,
			Object:      fr.object,
			Previous:    previous,
		}
		if err := r.emit(ctx, c); err != nil {
			return fmt.Errorf("diff: emit change %d (%s %s) of export %s: %w", c.Seq, e, fr.op, r.in.ExportID, err)
		}
		return nil
	}
	for i, e := range pifu.Entities {
		sf := r.upserts[i]
		if sf == nil {
			continue
		}
		err := sf.forward(r.in.Borrow, func(fr frame) error {
			if fr.op != Updated {
				return send(e, fr, nil)
			}
			off, ok := r.prevIdx[fr.keyHash]
			if !ok {
				return spoolErr(fmt.Errorf("no previous version of updated %s %s", e, fr.key))
			}
			pfr, err := r.prevUpd.readAt(off)
			if err != nil {
				return spoolErr(err)
			}
			previous, err := previousFields(pfr.object, fr.object)
			if err != nil {
				return fmt.Errorf("diff: %s %s: %w", e, fr.key, err)
			}
			return send(e, fr, previous)
		})
		if err != nil {
			return err
		}
	}
	for i := len(pifu.Entities) - 1; i >= 0; i-- {
		if sf := r.deletes[i]; sf != nil {
			if err := sf.backward(func(fr frame) error { return send(pifu.Entities[i], fr, nil) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// EventID is the deterministic id of a change (see Change.ID): the first 16
// bytes, in hex, of SHA-256 over the tenant, the export id, entity, key and
// op, each followed by a zero byte, then the content hash and the base
// checksum as 8 little-endian bytes each.
func EventID(tenant, exportID string, e pifu.Entity, key string, op Op, content uint64, base snapshot.Checksum) string {
	var ids idHasher
	id := ids.id(tenant, exportID, e, key, op, content, base)
	return hex.EncodeToString(id[:])
}

// idHasher computes event ids (EventID's raw bytes) with a reused buffer.
type idHasher struct{ buf []byte }

func (h *idHasher) id(tenant, exportID string, e pifu.Entity, key string, op Op, content uint64, base snapshot.Checksum) (id [16]byte) {
	b := h.buf[:0]
	for _, s := range [...]string{tenant, exportID, string(e), key, string(op)} {
		b = append(b, s...)
		b = append(b, 0)
	}
	b = binary.LittleEndian.AppendUint64(b, content)
	b = binary.LittleEndian.AppendUint64(b, uint64(base))
	h.buf = b
	sum := sha256.Sum256(b)
	copy(id[:], sum[:16])
	return id
}

var jsonNull = json.RawMessage("null")

// previousFields is the JSON object of the top-level fields that differ
// between prev and next, with their values in prev (null where prev lacks
// the field). Both are canonical JSON, so equal values are equal bytes.
func previousFields(prev, next []byte) (json.RawMessage, error) {
	var pm, nm map[string]json.RawMessage
	if err := json.Unmarshal(prev, &pm); err != nil {
		return nil, fmt.Errorf("previous version: %w", err)
	}
	if err := json.Unmarshal(next, &nm); err != nil {
		return nil, fmt.Errorf("new version: %w", err)
	}
	out := make(map[string]json.RawMessage)
	for k, pv := range pm {
		if nv, ok := nm[k]; !ok || !bytes.Equal(pv, nv) {
			out[k] = pv
		}
	}
	for k := range nm {
		if _, ok := pm[k]; !ok {
			out[k] = jsonNull
		}
	}
	return json.Marshal(out) // keys sorted: deterministic
}
