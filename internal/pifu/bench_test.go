package pifu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"

	"github.com/skolebuss/skolebuss/internal/rostergen"
)

// Benchmark inputs come from the sandbox's generator. "large" is the
// large-municipality preset (about 250 MB); "20MB" is a twelfth of it.
// Benchmarks run only under -bench; the default `go test` runs the small
// peak-memory test only.
var benchSizes = map[string]rostergen.Sizes{
	"small": {Schools: 2, Pupils: 300, Staff: 36},
	"20MB":  {Schools: 10, Pupils: 5000, Staff: 500},
	"large": {Schools: 120, Pupils: 60000, Staff: 6000},
}

var (
	exportMu    sync.Mutex
	exportBytes = map[string][]byte{}
)

func newMunicipality(tb testing.TB, size string) *rostergen.Municipality {
	tb.Helper()
	m, err := rostergen.New(rostergen.Spec{
		TenantID: "bench-tenant", Name: "Fjordvik kommune", Seed: 1, Sizes: benchSizes[size],
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// export returns the generated export of the given size, kept in memory for
// the throughput benchmarks.
func export(tb testing.TB, size string) []byte {
	tb.Helper()
	exportMu.Lock()
	defer exportMu.Unlock()
	if b, ok := exportBytes[size]; ok {
		return b
	}
	var buf bytes.Buffer
	if _, err := newMunicipality(tb, size).WriteExport(context.Background(), &buf, 0); err != nil {
		tb.Fatal(err)
	}
	exportBytes[size] = buf.Bytes()
	return buf.Bytes()
}

// exportFile writes the export of the given size to a file, so that the
// memory measurements hold no copy of the document in the heap.
func exportFile(tb testing.TB, size string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), size+".xml")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := newMunicipality(tb, size).WriteExport(context.Background(), w, 0); err != nil {
		tb.Fatal(err)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		tb.Fatal(err)
	}
	return path
}

func benchSizesToRun() []string { return []string{"small", "20MB", "large"} }

func BenchmarkDecoder(b *testing.B) {
	for _, size := range benchSizesToRun() {
		b.Run(size, func(b *testing.B) {
			doc := export(b, size)
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			b.ResetTimer()
			var n int
			for b.Loop() {
				n = 0
				d := NewDecoder(bytes.NewReader(doc))
				for {
					_, err := d.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkEncodingXML(b *testing.B) {
	for _, size := range benchSizesToRun() {
		b.Run(size, func(b *testing.B) {
			doc := export(b, size)
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			b.ResetTimer()
			var n int
			for b.Loop() {
				var err error
				if n, err = decodeEncodingXML(bytes.NewReader(doc)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkByteScan is the floor: one pass over the bytes counting '<'.
func BenchmarkByteScan(b *testing.B) {
	doc := export(b, "20MB")
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if bytes.Count(doc, []byte{'<'}) == 0 {
			b.Fatal("no tags")
		}
	}
}

// heapPeak decodes the document at path and returns the highest heap in
// use while doing so, above what was in use before, and the records read.
func heapPeak(tb testing.TB, path string) (peak uint64, records int) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	d := NewDecoder(f)
	for {
		_, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		if records++; records%256 == 0 {
			peak = max(peak, read())
		}
	}
	peak = max(peak, read())
	if peak < base {
		return 0, records
	}
	return peak - base, records
}

// TestPeakMemoryFlat checks that peak heap does not grow with the document,
// on a small and a 20 MB export (BenchmarkPeakMemory does 20 MB vs 250 MB).
func TestPeakMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a 20 MB export")
	}
	small, nSmall := heapPeak(t, exportFile(t, "small"))
	big, nBig := heapPeak(t, exportFile(t, "20MB"))
	t.Logf("peak heap: %d records %.1f MiB, %d records %.1f MiB", nSmall, mib(small), nBig, mib(big))
	if nBig < 10*nSmall {
		t.Fatalf("the big export has %d records, the small %d", nBig, nSmall)
	}
	if big > small+16<<20 {
		t.Errorf("peak heap grew from %.1f MiB to %.1f MiB", mib(small), mib(big))
	}
}

func BenchmarkPeakMemory(b *testing.B) {
	// Documents cached by the throughput benchmarks are live heap, and the
	// GC lets garbage grow with the live heap: drop them first.
	exportMu.Lock()
	clear(exportBytes)
	exportMu.Unlock()
	p20, n20 := heapPeak(b, exportFile(b, "20MB"))
	pLarge, nLarge := heapPeak(b, exportFile(b, "large"))
	if pLarge > p20+16<<20 {
		b.Errorf("peak heap grew from %.1f MiB to %.1f MiB", mib(p20), mib(pLarge))
	}
	for b.Loop() {
	}
	// After the loop: b.Loop resets the metrics reported before it.
	b.ReportMetric(mib(p20), "peak-MiB-20MB")
	b.ReportMetric(mib(pLarge), "peak-MiB-large")
	b.ReportMetric(float64(n20), "records-20MB")
	b.ReportMetric(float64(nLarge), "records-large")
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// The encoding/xml baseline: Token to find each record's start, then
// DecodeElement into structs holding the same fields as the records.

type xSourcedID struct {
	Type   string `xml:"sourcedidtype,attr"`
	Source string `xml:"source"`
	ID     string `xml:"id"`
}

type xTyped struct {
	Type     string `xml:"type,attr"`
	Priority string `xml:"priority,attr"`
	Value    string `xml:",chardata"`
}

type xAdr struct {
	POBox    string   `xml:"pobox"`
	ExtAdd   string   `xml:"extadd"`
	Street   []string `xml:"street"`
	Locality string   `xml:"locality"`
	PCode    string   `xml:"pcode"`
	Country  string   `xml:"country"`
}

type xTimeframe struct {
	Begin       string `xml:"begin"`
	End         string `xml:"end"`
	AdminPeriod string `xml:"adminperiod"`
}

type xPerson struct {
	RecStatus  string       `xml:"recstatus,attr"`
	SourcedIDs []xSourcedID `xml:"sourcedid"`
	UserIDs    []struct {
		Type  string `xml:"useridtype,attr"`
		Value string `xml:",chardata"`
	} `xml:"userid"`
	FN     string `xml:"name>fn"`
	Family string `xml:"name>n>family"`
	Given  string `xml:"name>n>given"`
	Gender string `xml:"demographics>gender"`
	Bday   string `xml:"demographics>bday"`
	Email  string `xml:"email"`
	URL    string `xml:"url"`
	Tel    []struct {
		Type  string `xml:"teltype,attr"`
		Value string `xml:",chardata"`
	} `xml:"tel"`
	Adr       []xAdr `xml:"adr"`
	Extension struct {
		Emails   []xTyped `xml:"pifu_email"`
		URLs     []xTyped `xml:"pifu_url"`
		Tels     []xTyped `xml:"pifu_tel"`
		Status   []xTyped `xml:"pifu_status"`
		Language string   `xml:"pifu_preferredLanguage"`
		Contacts []struct {
			Type      string     `xml:"type,attr"`
			SourcedID xSourcedID `xml:"sourcedid"`
		} `xml:"pifu_hasContactPerson"`
	} `xml:"extension"`
}

type xGroup struct {
	RecStatus  string       `xml:"recstatus,attr"`
	SourcedIDs []xSourcedID `xml:"sourcedid"`
	Types      []struct {
		Scheme    string `xml:"scheme"`
		TypeValue struct {
			Level string `xml:"level,attr"`
			Value string `xml:",chardata"`
		} `xml:"typevalue"`
	} `xml:"grouptype"`
	Short         string      `xml:"description>short"`
	Long          string      `xml:"description>long"`
	Full          string      `xml:"description>full"`
	Timeframe     *xTimeframe `xml:"timeframe"`
	Relationships []struct {
		Relation  string     `xml:"relation,attr"`
		SourcedID xSourcedID `xml:"sourcedid"`
		Label     string     `xml:"label"`
	} `xml:"relationship"`
	Extension struct {
		IDs []struct {
			Type   string `xml:"type,attr"`
			Value  string `xml:"pifu_value"`
			Scope  string `xml:"pifu_scope"`
			Unique string `xml:"pifu_unique"`
		} `xml:"pifu_id"`
		Names       []xTyped `xml:"pifu_name"`
		SchoolTypes []string `xml:"pifu_schoolType"`
	} `xml:"extension"`
}

type xMembership struct {
	SourcedID xSourcedID `xml:"sourcedid"`
	Members   []struct {
		SourcedID xSourcedID `xml:"sourcedid"`
		IDType    string     `xml:"idtype"`
		Roles     []struct {
			RoleType  string      `xml:"roletype,attr"`
			RecStatus string      `xml:"recstatus,attr"`
			Subrole   string      `xml:"subrole"`
			Status    string      `xml:"status"`
			Timeframe *xTimeframe `xml:"timeframe"`
			Primary   string      `xml:"extension>pifu_primaryRelation"`
		} `xml:"role"`
	} `xml:"member"`
}

// decodeEncodingXML decodes every record with encoding/xml and returns how
// many records (memberships counted per member and role, as Decoder does).
func decodeEncodingXML(r io.Reader) (int, error) {
	dec := xml.NewDecoder(r)
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "person":
			var p xPerson
			if err := dec.DecodeElement(&p, &se); err != nil {
				return n, err
			}
			n++
		case "group":
			var g xGroup
			if err := dec.DecodeElement(&g, &se); err != nil {
				return n, err
			}
			n++
		case "membership":
			var m xMembership
			if err := dec.DecodeElement(&m, &se); err != nil {
				return n, err
			}
			for _, mem := range m.Members {
				n += len(mem.Roles)
			}
		}
	}
}

// Both decoders see the same records in the benchmark document.
func TestBaselineCountsAgree(t *testing.T) {
	doc := export(t, "small")
	want, err := decodeEncodingXML(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(mustDecode(t, doc)); got != want {
		t.Errorf("Decoder read %d records, encoding/xml %d", got, want)
	}
}
