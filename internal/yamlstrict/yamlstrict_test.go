package yamlstrict

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

type level int

func (l *level) UnmarshalYAML(n *yaml.Node) error {
	switch n.Value {
	case "low":
		*l = 1
	case "high":
		*l = 2
	default:
		return errors.New(`want low or high`)
	}
	return nil
}

type Common struct {
	Label string `yaml:"label"`
}

type inner struct {
	Rate  float64       `yaml:"rate"`
	Burst int           `yaml:"burst"`
	Every time.Duration `yaml:"every"`
}

type top struct {
	Common  `yaml:",inline"`
	Name    string            `yaml:"name"`
	On      bool              `yaml:"on"`
	Level   level             `yaml:"level"`
	Addr    netip.Addr        `yaml:"addr"` // a TextUnmarshaler
	Limits  inner             `yaml:"limits"`
	List    []inner           `yaml:"list"`
	Tags    map[string]int    `yaml:"tags"`
	Ptr     *inner            `yaml:"ptr"`
	Any     any               `yaml:"any"`
	Skipped string            `yaml:"-"`
	Plain   string            // yaml.v3 names it "plain"
	Labels  map[string]string `yaml:"labels"`
}

func TestDecodeGood(t *testing.T) {
	src := `label: l
name: n
on: true
level: high
addr: 192.0.2.1
limits: &lim {rate: 1.5, burst: 3, every: 90s}
list:
  - *lim
  - {rate: 2}
tags: {a: 1}
ptr: {burst: 9}
any: [1, two]
plain: p
labels: ~
`
	d, err := Parse("good.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := top{Name: "default", Limits: inner{Burst: 1}}
	if err := d.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Label != "l" || got.Level != 2 || !got.On || got.Addr.String() != "192.0.2.1" || got.Limits.Every != 90*time.Second ||
		len(got.List) != 2 || got.List[0].Burst != 3 || got.Tags["a"] != 1 || got.Ptr.Burst != 9 || got.Plain != "p" {
		t.Errorf("decoded %+v", got)
	}
	if d.Line("list[1].rate") != 9 || d.Line("limits.nothing") != 6 || d.Line("nothing") != 1 || d.Lines()["plain"] != 13 {
		t.Errorf("lines: %v", d.Lines())
	}
	if err := d.Errorf("list[1].rate", "too %s", "slow"); err.Error() != "good.yaml:9: list[1].rate: too slow" {
		t.Errorf("Errorf: %v", err)
	}
}

func TestDecodeBad(t *testing.T) {
	src := `name: [a]
on: maybe
level: medium
addr: not-an-ip
limits:
  rate: fast
  burst: many
  every: one hour
  extra: 1
list: {rate: 1}
tags: {a: b}
ptr: 7
skipped: x
secretish: aVeryLongSecretValue
`
	d, err := Parse("bad.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := top{Name: "default"}
	err = d.Decode(&got)
	if err == nil {
		t.Fatal("a bad file decoded")
	}
	want := []string{
		`bad.yaml:1: name: a list is not a string`,
		`bad.yaml:2: on: "maybe" is not true or false`,
		`bad.yaml:3: level: want low or high`,
		`bad.yaml:4: addr: ParseAddr("not-an-ip"): unable to parse IP`,
		`bad.yaml:6: limits.rate: "fast" is not a number`,
		`bad.yaml:7: limits.burst: "many" is not a whole number`,
		`bad.yaml:8: limits.every: "one hour" is not a duration like 90s or 1h`,
		`bad.yaml:9: limits.extra: unknown field "extra" in limits`,
		`bad.yaml:10: list: a mapping is not a list`,
		`bad.yaml:11: tags.a: "b" is not a whole number`,
		`bad.yaml:12: ptr: "7" is not a mapping (ptr)`,
		`bad.yaml:13: skipped: unknown field "skipped" in the top level`,
		`bad.yaml:14: secretish: unknown field "secretish" in the top level`,
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got.Name != "default" {
		t.Errorf("a refused file changed the value: %+v", got)
	}

	d, _ = Parse("bad.yaml", []byte("limits: {rate: aVeryLongSecretValue}\n"))
	if err := d.Decode(&got); err == nil || strings.Contains(err.Error(), "SecretValue") || !strings.Contains(err.Error(), `"aVeryLo..." is not a number`) {
		t.Errorf("a long value is shown whole or not at all: %v", err)
	}
}

func TestParseRefuses(t *testing.T) {
	cases := map[string]string{
		"":                   "x.yaml: the file is empty",
		"# only a comment\n": "x.yaml: the file is empty",
		"a: 1\n---\na: 2\n":  "x.yaml:2: a second YAML document; the file is one document",
		"a: 1\nb: c: d\n":    "x.yaml:2: mapping values are not allowed in this context",
		"a: [1, 2\n":         "x.yaml:",
		"a: 1\n\tb: 2\n":     "x.yaml:2: found a tab character",
		"a: *nothing\n":      "x.yaml:",
	}
	for src, want := range cases {
		_, err := Parse("x.yaml", []byte(src))
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), ": yaml: ") {
			t.Errorf("Parse(%q) = %v, want %q...", src, err, want)
		}
	}
}
