package flytapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// BenchmarkExportBody measures reading a 32 MiB export through FetchExport's
// body (byte counting, idle timer, error classification) against reading
// the same answer with a plain http.Get, over loopback HTTP.
func BenchmarkExportBody(b *testing.B) {
	payload := bytes.Repeat([]byte("<person><sourcedid><id>x</id></sourcedid></person>\n"), 32<<20/52)
	up := newUpstreamB(b, func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
		w.Write(payload)
	})
	buf := make([]byte, 64<<10)
	b.Run("flytapi", func(b *testing.B) {
		c, _ := newClient(b, up.URL, "id", testSecret, nil, nil, nil)
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			exp, err := c.FetchExport(context.Background(), "app", "t1")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(io.Discard, exp.Body, buf); err != nil {
				b.Fatal(err)
			}
			exp.Body.Close()
		}
	})
	b.Run("plain_http", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			req, _ := http.NewRequest("GET", up.URL+DefaultExportPath, nil)
			req.Header.Set("Authorization", "Bearer tok-1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(io.Discard, resp.Body, buf); err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	})
}
