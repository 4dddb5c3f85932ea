package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
)

// badTokenResponse is a success answer of the token endpoint that holds no
// usable token: a body x/oauth2 cannot parse, or one without an
// access_token. x/oauth2 reports both with untyped errors; checking the
// answer before it does gives classify a type to decide on.
type badTokenResponse struct {
	status int
	what   string
}

func (e *badTokenResponse) Error() string {
	return fmt.Sprintf("endpoint answered %d %s", e.status, e.what)
}

// tokenResponseCheck is a RoundTripper that refuses, with a
// *badTokenResponse, a 2xx answer x/oauth2 would refuse for its body. Other
// answers pass as they came: errors in them are x/oauth2's RetrieveError.
type tokenResponseCheck struct{ next http.RoundTripper }

// maxTokenResponse is what x/oauth2 reads of a token answer.
const maxTokenResponse = 1 << 20

func (c tokenResponseCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if what := checkTokenBody(resp.Header.Get("Content-Type"), body); what != "" {
		return nil, &badTokenResponse{status: resp.StatusCode, what: what}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// checkTokenBody parses a success answer as x/oauth2 does (a form for
// application/x-www-form-urlencoded and text/plain, JSON otherwise) and says
// what is wrong with it, or "" when x/oauth2 will take a token from it or
// report the OAuth error code it holds.
func checkTokenBody(contentType string, body []byte) string {
	var token, code string
	switch mt, _, _ := mime.ParseMediaType(contentType); mt {
	case "application/x-www-form-urlencoded", "text/plain":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return "with a form that does not parse"
		}
		token, code = v.Get("access_token"), v.Get("error")
	default:
		var j struct {
			AccessToken      string    `json:"access_token"`
			TokenType        string    `json:"token_type"`
			RefreshToken     string    `json:"refresh_token"`
			ExpiresIn        expiresIn `json:"expires_in"`
			ErrorCode        string    `json:"error"`
			ErrorDescription string    `json:"error_description"`
			ErrorURI         string    `json:"error_uri"`
		}
		if err := json.Unmarshal(body, &j); err != nil {
			return fmt.Sprintf("with a body that is not a JSON token response (content type %q)", clip(contentType, 60))
		}
		token, code = j.AccessToken, j.ErrorCode
	}
	if token == "" && code == "" {
		return "without an access_token"
	}
	return ""
}

// expiresIn reads expires_in as x/oauth2 does: a number or a string holding
// one.
type expiresIn int32

func (e *expiresIn) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	i, err := n.Int64()
	if err != nil {
		return err
	}
	*e = expiresIn(min(i, math.MaxInt32))
	return nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
