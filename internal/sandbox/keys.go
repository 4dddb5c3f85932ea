package sandbox

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signer holds the token signing key and its public JWK. Immutable after
// construction; safe for concurrent use.
type signer struct {
	key    crypto.Signer
	method jwt.SigningMethod
	kid    string
	jwk    map[string]string
}

// newSigner loads the key from path, or generates a P-256 key when path is
// empty.
func newSigner(path string) (*signer, error) {
	var key crypto.Signer
	if path == "" {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate signing key: %w", err)
		}
		key = k
	} else {
		k, err := readKey(path)
		if err != nil {
			return nil, err
		}
		key = k
	}
	s := &signer{key: key}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signing key %s: only P-256 EC keys (ES256) are supported", path)
		}
		pub, err := k.PublicKey.ECDH()
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", path, err)
		}
		raw := pub.Bytes() // 0x04 || X || Y
		s.method = jwt.SigningMethodES256
		s.jwk = map[string]string{"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:65])}
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("signing key %s: RSA keys must have at least 2048 bits", path)
		}
		s.method = jwt.SigningMethodRS256
		s.jwk = map[string]string{"kty": "RSA", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	default:
		return nil, fmt.Errorf("signing key %s: unsupported key type %T (want EC P-256 or RSA)", path, key)
	}
	s.kid = thumbprint(s.jwk)
	s.jwk["kid"] = s.kid
	s.jwk["use"] = "sig"
	s.jwk["alg"] = s.method.Alg()
	return s, nil
}

func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("signing key %s: no PEM block", path)
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("signing key %s: unsupported key type %T", path, k)
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("signing key %s: not a PKCS#8, EC or PKCS#1 private key", path)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// thumbprint is the RFC 7638 JWK thumbprint: SHA-256 over the required
// members in lexical order.
func thumbprint(jwk map[string]string) string {
	var canon []byte
	switch jwk["kty"] {
	case "EC":
		canon = fmt.Appendf(nil, `{"crv":%q,"kty":"EC","x":%q,"y":%q}`, jwk["crv"], jwk["x"], jwk["y"])
	case "RSA":
		canon = fmt.Appendf(nil, `{"e":%q,"kty":"RSA","n":%q}`, jwk["e"], jwk["n"])
	}
	sum := sha256.Sum256(canon)
	return b64(sum[:])
}

// jwks is the published key set.
func (s *signer) jwks() []byte {
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{s.jwk}})
	return b
}

// Claims are the claims of a sandbox access token, as Visma Connect sends
// them: scope is a list, tenant_id the GUID of the tenant.
type Claims struct {
	ClientID string   `json:"client_id"`
	Scope    []string `json:"scope"`
	TenantID string   `json:"tenant_id"`
	jwt.RegisteredClaims
}

// HasScope reports whether the token grants scope.
func (c *Claims) HasScope(scope string) bool {
	for _, s := range c.Scope {
		if s == scope {
			return true
		}
	}
	return false
}

// sign mints a token.
func (s *signer) sign(c *Claims) (string, error) {
	t := jwt.NewWithClaims(s.method, c)
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}

var errForeignKey = errors.New("token not signed by this sandbox's key")

// verify checks the signature, alg, kid, issuer, exp and nbf of raw and
// returns its claims.
func (s *signer) verify(raw, issuer string, now time.Time) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != s.kid {
			return nil, errForeignKey
		}
		return s.key.Public(), nil
	},
		jwt.WithValidMethods([]string{s.method.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return nil, err
	}
	return &c, nil
}
