package publisher

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// The reader gets every byte of the source in order and then the source's
// own error, whatever sizes the source and the reader read in.
func TestReadAheadPassesEverythingThrough(t *testing.T) {
	src := make([]byte, 3*readAheadSize*readAheadBufs+12345)
	for i := range src {
		src[i] = byte(i * 7)
	}
	boom := errors.New("boom")
	for name, tc := range map[string]struct {
		r    io.Reader
		want error
	}{
		"whole":    {bytes.NewReader(src), io.EOF},
		"one byte": {iotest.OneByteReader(bytes.NewReader(src[:300000])), io.EOF},
		"half":     {iotest.HalfReader(bytes.NewReader(src)), io.EOF},
		"failing":  {io.MultiReader(bytes.NewReader(src[:700001]), iotest.ErrReader(boom)), boom},
		"empty":    {bytes.NewReader(nil), io.EOF},
	} {
		ra := newReadAhead(tc.r)
		var got bytes.Buffer
		buf := make([]byte, 4093)
		var err error
		for {
			var n int
			n, err = ra.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				break
			}
		}
		close(ra.quit)
		ra.wg.Wait()
		if err != tc.want {
			t.Errorf("%s: error %v, want %v", name, err, tc.want)
		}
		n := got.Len()
		if n > len(src) || !bytes.Equal(got.Bytes(), src[:n]) {
			t.Fatalf("%s: %d bytes that are not the source's", name, n)
		}
		if want := map[string]int{"one byte": 300000, "failing": 700001, "empty": 0}; want[name] != 0 || name == "empty" {
			if n != want[name] {
				t.Errorf("%s: %d bytes, want %d", name, n, want[name])
			}
		} else if n != len(src) {
			t.Errorf("%s: %d bytes, want %d", name, n, len(src))
		}
	}
}

// Stopping a reader that was not read to the end ends its goroutine.
func TestReadAheadStopsEarly(t *testing.T) {
	ra := newReadAhead(bytes.NewReader(make([]byte, 20*readAheadSize)))
	if _, err := ra.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	close(ra.quit)
	ra.wg.Wait() // returns: the goroutine was blocked on a full queue
}
