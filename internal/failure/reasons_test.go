package failure

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// reasonConstants are the Reason constants reasons.go declares, by name.
func reasonConstants(t *testing.T) map[string]Reason {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "reasons.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Reason{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" {
				continue
			}
			for i, n := range vs.Names {
				v, err := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				out[n.Name] = Reason(v)
			}
		}
	}
	return out
}

func TestTheSetDescribesEveryReason(t *testing.T) {
	consts := reasonConstants(t)
	if len(consts) < 60 {
		t.Fatalf("found %d Reason constants in reasons.go; the parse missed some", len(consts))
	}
	seen := map[Reason]string{}
	for name, r := range consts {
		if other, ok := seen[r]; ok {
			t.Errorf("%s and %s are both %q", name, other, r)
		}
		seen[r] = name
		info, ok := Lookup(string(r))
		if !ok {
			t.Errorf("%s (%q) has no row in the table", name, r)
			continue
		}
		if info.Sentence == "" || !strings.HasSuffix(info.Sentence, ".") || strings.ToUpper(info.Sentence[:1]) != info.Sentence[:1] {
			t.Errorf("%s: the sentence %q is not a sentence", name, info.Sentence)
		}
		if c := info.Class.String(); strings.HasPrefix(c, "class(") {
			t.Errorf("%s: class %s", name, c)
		}
	}
	if len(Reasons()) != len(consts) {
		t.Errorf("the table has %d rows, reasons.go %d constants", len(Reasons()), len(consts))
	}
	for _, r := range Reasons() {
		if _, ok := seen[r]; !ok {
			t.Errorf("the table's %q is no constant", r)
		}
	}
}

func TestDynamicReasons(t *testing.T) {
	cases := []struct {
		r     Reason
		want  string
		class Class
		found bool
	}{
		{ReasonHTTP(429), "http_429", Throttled, true},
		{ReasonHTTP(503), "http_503", Transient, true},
		{ReasonHTTP(502), "http_502", Transient, true},
		{ReasonHTTP(408), "http_408", Transient, true},
		{ReasonHTTP(400), "http_400", Permanent, true},
		{ReasonTokenHTTP(503), "token_http_503", Transient, true},
		{ReasonTokenHTTP(400), "token_http_400", Permanent, true},
		{ReasonOAuth("invalid_client"), "invalid_client", Permanent, true},
		{ReasonOAuth("slow_down"), "slow_down", 0, false},
		{ReasonOAuth("Bad Code"), "oauth_error", Permanent, true},
		{ReasonOAuth(strings.Repeat("x", 41)), "oauth_error", Permanent, true},
		{Reason("http_4299"), "http_4299", 0, false},
		{Reason("http_"), "http_", 0, false},
		{Reason("token_http_abc"), "token_http_abc", 0, false},
	}
	for _, c := range cases {
		if string(c.r) != c.want {
			t.Errorf("got %q, want %q", c.r, c.want)
		}
		info, ok := Lookup(string(c.r))
		if ok != c.found || ok && (info.Class != c.class || info.Sentence == "") {
			t.Errorf("Lookup(%q) = %+v, %v; want class %s, found %v", c.r, info, ok, c.class, c.found)
		}
	}
	if ReasonHTTP(429) != ReasonHTTP429 || ReasonHTTP(503) != ReasonHTTP503 {
		t.Error("the named HTTP reasons differ from ReasonHTTP's")
	}
}

func TestDecisionsOnReasons(t *testing.T) {
	throttle := func(r Reason) error {
		return fmt.Errorf("fetch: %w", &Error{Class: Throttled, Reason: r, RetryAfter: time.Second})
	}
	cases := []struct {
		err      error
		upstream bool
	}{
		{throttle(ReasonHTTP429), true},
		{throttle(ReasonHTTP503), true},
		{New(Transient, ReasonHTTP503, errors.New("no Retry-After")), false},
		{throttle(ReasonTokenHTTP(429)), false},
		{throttle(ReasonRateLimit), false},
		{throttle(ReasonBreakerOpen), false},
		{errors.New("http_429"), false},
		{nil, false},
	}
	for _, c := range cases {
		if got := IsUpstreamThrottle(c.err); got != c.upstream {
			t.Errorf("IsUpstreamThrottle(%v) = %v", c.err, got)
		}
	}
	held := fmt.Errorf("publish: %w", New(Permanent, ReasonDeletionHeld, errors.New("would delete 30%")))
	if !HasReason(held, ReasonDeletionHeld) || HasReason(held, ReasonInvalidDocument) {
		t.Error("HasReason does not follow the chain")
	}
	if HasReason(context.Canceled, ReasonCanceled) || HasReason(nil, ReasonUnclassified) {
		t.Error("HasReason holds for an error nobody classified")
	}
}

// classOf is the class a selector like failure.Permanent names.
var classOf = map[string]Class{"Transient": Transient, "Throttled": Throttled, "Permanent": Permanent, "Canceled": Canceled}

// checkReasons reports each reason in f given to failure.New, Permanentf,
// Transientf or an Error literal that is outside the set, is built by
// concatenation, or is given with another class than the set's; and each
// conversion to failure.Reason (a dynamic reason comes from ReasonHTTP,
// ReasonTokenHTTP or ReasonOAuth; a code read back goes to Lookup).
func checkReasons(fset *token.FileSet, f *ast.File, consts map[string]Reason) []string {
	var problems []string
	report := func(n ast.Node, format string, args ...any) {
		problems = append(problems, fset.Position(n.Pos()).String()+": "+fmt.Sprintf(format, args...))
	}
	isFailure := func(e ast.Expr, name string) bool {
		s, ok := e.(*ast.SelectorExpr)
		if !ok || s.Sel.Name != name {
			return false
		}
		id, ok := s.X.(*ast.Ident)
		return ok && id.Name == "failure"
	}
	check := func(class ast.Expr, implied string, reason ast.Expr) {
		var r Reason
		switch e := reason.(type) {
		case *ast.BasicLit:
			v, _ := strconv.Unquote(e.Value)
			r = Reason(v)
		case *ast.SelectorExpr:
			if !isFailure(e, e.Sel.Name) || !strings.HasPrefix(e.Sel.Name, "Reason") {
				return
			}
			c, ok := consts[e.Sel.Name]
			if !ok {
				report(e, "failure.%s is no Reason constant", e.Sel.Name)
				return
			}
			r = c
		case *ast.BinaryExpr:
			report(e, "a reason built by concatenation; use ReasonHTTP, ReasonTokenHTTP or ReasonOAuth")
			return
		default:
			return // a variable of type Reason, or a constructor's result
		}
		info, ok := reasons[r]
		if !ok {
			report(reason, "reason %q is not in the set of internal/failure/reasons.go", r)
			return
		}
		want := implied
		if s, ok := class.(*ast.SelectorExpr); ok && want == "" {
			want = s.Sel.Name
		}
		if c, ok := classOf[want]; ok && c != info.Class && r != ReasonHTTP503 {
			report(reason, "reason %q given as %s; the set says %s", r, c, info.Class)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch e := n.(type) {
		case *ast.CallExpr:
			switch {
			case isFailure(e.Fun, "New") && len(e.Args) == 3:
				check(e.Args[0], "", e.Args[1])
			case isFailure(e.Fun, "Permanentf") && len(e.Args) >= 1:
				check(nil, "Permanent", e.Args[0])
			case isFailure(e.Fun, "Transientf") && len(e.Args) >= 1:
				check(nil, "Transient", e.Args[0])
			case isFailure(e.Fun, "Reason"):
				report(e, "a conversion to failure.Reason")
			}
		case *ast.CompositeLit:
			if !isFailure(e.Type, "Error") {
				return true
			}
			var class, reason ast.Expr
			for _, el := range e.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					switch kv.Key.(*ast.Ident).Name {
					case "Class":
						class = kv.Value
					case "Reason":
						reason = kv.Value
					}
				}
			}
			if reason != nil {
				check(class, "", reason)
			}
		}
		return true
	})
	return problems
}

// TestEveryReasonIsInTheSet reads every non-test Go file of the module:
// each reason a package gives is in the set, with the set's class.
func TestEveryReasonIsInTheSet(t *testing.T) {
	consts := reasonConstants(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root: %v", err)
	}
	fset := token.NewFileSet()
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		for _, p := range checkReasons(fset, f, consts) {
			t.Error(p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read %d Go files under %s; the walk missed the module", files, root)
	}

	// The check finds what it is for.
	bad := `package x
func f() {
	_ = failure.New(failure.Transient, "no_such_reason", nil)
	_ = failure.Permanentf("http_" + s, "")
	_ = failure.Transientf(failure.ReasonDeletionHeld, "")
	_ = &failure.Error{Class: failure.Throttled, Reason: "invalid_scope"}
	_ = failure.New(failure.Permanent, failure.ReasonNoSuch, nil)
	_ = failure.Reason(code)
	_ = failure.New(failure.Transient, failure.ReasonSpoolIO, nil)
	_ = failure.Permanentf("invalid_client", "")
	_ = &failure.Error{Class: failure.Throttled, Reason: failure.ReasonHTTP503}
}`
	f, err := parser.ParseFile(fset, "bad.go", bad, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := checkReasons(fset, f, consts)
	want := []string{`"no_such_reason" is not in the set`, "concatenation", `"deletion_held" given as transient`,
		`"invalid_scope" given as throttled`, "ReasonNoSuch is no Reason constant", "conversion"}
	if len(got) != len(want) {
		t.Fatalf("the check found %d problems in bad.go, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("problem %d: %s; want one about %s", i, got[i], w)
		}
	}
}

// A metric label is a reason of the set or "other": a code an upstream made
// up never becomes a label value.
func TestLabelKeepsTheSet(t *testing.T) {
	cases := map[string]string{
		"":                                   "",
		string(ReasonBodyStalled):            string(ReasonBodyStalled),
		string(ReasonExportTooLarge):         string(ReasonExportTooLarge),
		string(ReasonHTTP(502)):              "http_502",
		string(ReasonTokenHTTP(400)):         "token_http_400",
		string(ReasonOAuth("invalid_scope")): "invalid_scope",
		string(ReasonOAuth("slow_down")):     LabelOther,
		string(ReasonOAuth("x_" + strings.Repeat("a", 30))): LabelOther,
		"http_99999": LabelOther,
	}
	for code, want := range cases {
		if got := Label(code); got != want {
			t.Errorf("Label(%q) = %q, want %q", code, got, want)
		}
	}
}
