package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const (
	testSecret = "s3cr3t-Client-Value-42"
	testToken  = "eyJ-access-token-value-99"
)

// assertHidden formats v in every way a program might print it and fails if
// any form shows one of the values.
func assertHidden(t *testing.T, what string, v any, values ...string) {
	t.Helper()
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "v", v)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "v", v)
	js, _ := json.Marshal(v)
	forms := map[string]string{
		"%v": fmt.Sprintf("%v", v), "%+v": fmt.Sprintf("%+v", v), "%#v": fmt.Sprintf("%#v", v),
		"%s": fmt.Sprintf("%s", v), "%q": fmt.Sprintf("%q", v), "%x": fmt.Sprintf("%x", v),
		"json": string(js), "slog": logged.String(),
	}
	if e, ok := v.(error); ok {
		forms["Error()"] = e.Error()
	}
	for form, s := range forms {
		for _, val := range values {
			if strings.Contains(s, val) || strings.Contains(s, fmt.Sprintf("%x", val)) {
				t.Errorf("%s printed with %s shows a secret: %s", what, form, s)
			}
		}
	}
}

func TestSecretIsRedactedEverywhere(t *testing.T) {
	s := Secret(testSecret)
	if s.Reveal() != testSecret {
		t.Fatalf("Reveal = %q", s.Reveal())
	}
	if got := fmt.Sprintf("%v|%s|%+v|%#v|%q|%d", s, s, s, s, s, s); strings.Count(got, "[redacted]") != 6 {
		t.Errorf("formatted: %s", got)
	}
	assertHidden(t, "Secret", s, testSecret)
	assertHidden(t, "Token", Token{Access: Secret(testToken), Type: "Bearer", Expiry: time.Now()}, testToken)
	assertHidden(t, "*Token", &Token{Access: Secret(testToken)}, testToken)
	app := Application{Name: "demo", ClientID: "id", ClientSecret: Secret(testSecret), Scopes: []string{"s"}}
	assertHidden(t, "Application", app, testSecret)
	cfg := Config{TokenURL: "http://x/connect/token", Applications: []Application{app}}
	assertHidden(t, "Config", cfg, testSecret)
	assertHidden(t, "*Config", &cfg, testSecret)
}
