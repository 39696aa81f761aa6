package control

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Scopes of API tokens. admin holds every scope; operate holds read.
const (
	ScopeRead    = "read"    // routes, audit, automation, change stream
	ScopePick    = "pick"    // pick: senders
	ScopeOperate = "operate" // operator actions (and read)
	ScopeAdmin   = "admin"   // everything, subscribers and their delivery logs included
)

// Token is an API token as configured: its name (the "who" of the audit
// log), the hex SHA-256 of the secret token, and its scopes.
type Token struct {
	Name   string
	SHA256 string
	Scopes []string
}

// HashToken returns what the configuration stores for a token: the hex
// SHA-256 of it. A fast hash is right here: tokens are long random
// strings, not passwords a dictionary could guess.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// auth checks bearer tokens against the configured hashes.
type auth struct {
	byHash map[[sha256.Size]byte]Token // raw hash: no hex string per request on the pick path
}

func newAuth(tokens []Token) (*auth, error) {
	a := &auth{byHash: map[[sha256.Size]byte]Token{}}
	for _, t := range tokens {
		var h [sha256.Size]byte
		if n, err := hex.Decode(h[:], []byte(t.SHA256)); err != nil || n != sha256.Size {
			return nil, fmt.Errorf("token %s: sha256 must be 64 hex digits", t.Name)
		}
		if _, dup := a.byHash[h]; dup {
			return nil, fmt.Errorf("token %s: the same token hash is configured twice", t.Name)
		}
		a.byHash[h] = t
	}
	return a, nil
}

func (t Token) has(scope string) bool {
	return slices.Contains(t.Scopes, scope) || slices.Contains(t.Scopes, ScopeAdmin) ||
		scope == ScopeRead && slices.Contains(t.Scopes, ScopeOperate)
}

// check returns the token of r if it has scope; otherwise it has answered
// 401 (no or unknown token) or 403 (token without the scope).
//
// The lookup is by hash: comparing the presented token's hash with a map
// key leaks nothing useful through timing, since an attacker cannot choose
// the hash's bytes.
func (a *auth) check(w http.ResponseWriter, r *http.Request, scope string) (Token, bool) {
	h := r.Header.Get("Authorization")
	// The scheme is case-insensitive (RFC 9110 11.1): "bearer x" is a
	// bearer token too.
	scheme, raw, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigia-control"`)
		writeProblem(w, http.StatusUnauthorized, "Unauthorized", "a bearer token is required (Authorization: Bearer <token>)")
		return Token{}, false
	}
	t, ok := a.byHash[sha256.Sum256([]byte(strings.TrimSpace(raw)))]
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigia-control", error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, "Unauthorized", "unknown token")
		return Token{}, false
	}
	if !t.has(scope) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="vigia-control", error="insufficient_scope", scope=%q`, scope))
		writeProblem(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("token %s lacks scope %s", t.Name, scope))
		return Token{}, false
	}
	return t, true
}
