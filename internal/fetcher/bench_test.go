package fetcher

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/flytapi"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/sandbox"
)

// BenchmarkFetchJob is one job of the medium demo municipality (Nordstrand)
// end to end, without the consumer: token (cached), export over HTTP from the
// sandbox, streamed into the object store, FetchedExport published. Compare
// BenchmarkDownloadOnly: the same export read and discarded.
func BenchmarkFetchJob(b *testing.B) {
	e := newEnv(b, benchSandbox())
	f, err := New(e.config(nil), e.deps())
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		job := messages.ExportJob{JobID: "bench-" + time.Now().Format("150405.000000000"), Tenant: nordstrand,
			Application: demoApp, Reason: messages.ReasonDemand, RequestedAt: time.Now()}
		_, m, err := messages.EncodeWatermill(job)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Handle(context.Background(), m); err != nil {
			b.Fatal(err)
		}
		if size == 0 {
			info, err := e.bus.Stores.Exports.GetInfo(context.Background(), ObjectName(job))
			if err != nil {
				b.Fatal(err)
			}
			size = int64(info.Size)
		}
	}
	b.SetBytes(size)
}

func BenchmarkDownloadOnly(b *testing.B) {
	e := newEnv(b, benchSandbox())
	var size int64
	for b.Loop() {
		tok, err := e.tokens.Token(context.Background(), auth.Key{App: demoApp, Tenant: nordstrand})
		if err != nil {
			b.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+flytapi.DefaultExportPath, nil)
		tok.SetAuthHeader(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		size, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(size)
}

// benchSandbox is the demo without limits (the benchmark measures transfer).
func benchSandbox() sandbox.Config {
	c := sandbox.DemoConfig()
	c.Applications[0].RateLimit = nil
	c.Applications[0].Quota = sandbox.Quota{}
	return c
}
