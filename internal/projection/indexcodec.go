package projection

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// indexMagic starts an encoded Index.
const indexMagic = "pxi1"

// MarshalBinary encodes a built Index, for a stage that keeps it between
// exports.
func (x *Index) MarshalBinary() ([]byte, error) {
	if !x.built {
		return nil, errors.New("projection: marshal an Index before Build")
	}
	b := make([]byte, 0, len(indexMagic)+12*(len(x.links)+len(x.roster))+8*len(x.ggroups)+30)
	b = append(b, indexMagic...)
	for _, m := range []map[uint64]int32{x.links, x.roster} {
		b = binary.AppendUvarint(b, uint64(len(m)))
		for k, n := range m {
			b = binary.LittleEndian.AppendUint64(b, k)
			b = binary.AppendUvarint(b, uint64(n))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(x.ggroups)))
	for k := range x.ggroups {
		b = binary.LittleEndian.AppendUint64(b, k)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded into x, which is then
// built.
func (x *Index) UnmarshalBinary(b []byte) error {
	bad := func(what string) error { return fmt.Errorf("projection: encoded index: %s", what) }
	if len(b) < len(indexMagic) || string(b[:len(indexMagic)]) != indexMagic {
		return bad("not an index")
	}
	b = b[len(indexMagic):]
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	y := NewIndex()
	for _, m := range []map[uint64]int32{y.links, y.roster} {
		n, ok := uvarint()
		if !ok || n > uint64(len(b)) {
			return bad("a count is cut short")
		}
		for range n {
			if len(b) < 8 {
				return bad("a key is cut short")
			}
			k := binary.LittleEndian.Uint64(b)
			b = b[8:]
			c, ok := uvarint()
			if !ok || c == 0 || c > 1<<31-1 {
				return bad("a count is out of range")
			}
			m[k] = int32(c)
		}
	}
	n, ok := uvarint()
	if !ok || n*8 != uint64(len(b)) {
		return bad("the guardian groups are cut short")
	}
	for range n {
		y.ggroups[binary.LittleEndian.Uint64(b)] = struct{}{}
		b = b[8:]
	}
	y.built = true
	*x = *y
	return nil
}
