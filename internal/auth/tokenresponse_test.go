package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokenResponseCheck refuses exactly the success answers x/oauth2 refuses
// with an untyped error, and lets through those it takes a token from or
// reports as a RetrieveError.
func TestTokenResponseCheckAgreesWithOAuth2(t *testing.T) {
	cases := []struct {
		contentType, body string
		bad               bool
	}{
		{"application/json", `{"access_token":"a","token_type":"Bearer","expires_in":60}`, false},
		{"application/json", `{"access_token":"a","expires_in":"60"}`, false},
		{"application/json; charset=utf-8", `{"access_token":"a","expires_in":null}`, false},
		{"application/json", `{"token_type":"Bearer"}`, true},
		{"application/json", `{"access_token":""}`, true},
		{"application/json", `{"access_token":"a","expires_in":"soon"}`, true},
		{"application/json", `{"access_token":7}`, true},
		{"application/json", `{"error":"invalid_client"}`, false}, // a RetrieveError
		{"text/html", `<html>login page</html>`, true},
		{"", ``, true},
		{"application/x-www-form-urlencoded", `access_token=a&token_type=bearer&expires_in=60`, false},
		{"text/plain", `token_type=bearer`, true},
		{"text/plain", `access_token=a%zz`, true},
		{"application/x-www-form-urlencoded", `error=invalid_scope`, false},
	}
	for _, tc := range cases {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", tc.contentType)
			_, _ = w.Write([]byte(tc.body))
		}))
		fetch := func(rt http.RoundTripper) error {
			cc := clientcredentials.Config{ClientID: "id", ClientSecret: "s", TokenURL: ts.URL,
				AuthStyle: oauth2.AuthStyleInParams}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rt})
			_, err := cc.Token(ctx)
			return err
		}
		plain := fetch(http.DefaultTransport)
		var re *oauth2.RetrieveError
		oauthRefused := plain != nil && !errors.As(plain, &re)
		checked := fetch(tokenResponseCheck{http.DefaultTransport})
		var bad *badTokenResponse
		if got := errors.As(checked, &bad); got != tc.bad || oauthRefused != tc.bad {
			t.Errorf("%s %q: check refused %v (%v), x/oauth2 alone refused %v (%v); want %v",
				tc.contentType, tc.body, got, checked, oauthRefused, plain, tc.bad)
		}
		if !tc.bad && (plain == nil) != (checked == nil) {
			t.Errorf("%s %q: x/oauth2 alone %v, through the check %v", tc.contentType, tc.body, plain, checked)
		}
		ts.Close()
	}
}
