// Package problem writes HTTP error answers as RFC 9457 problem details
// (application/problem+json), the one error shape of every Vigia API.
package problem

import (
	"encoding/json"
	"net/http"
)

// Details is an RFC 9457 problem.
type Details struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Write answers status with a problem body. title is the generic text for
// the status unless given.
func Write(w http.ResponseWriter, status int, title, detail string) {
	if title == "" {
		title = http.StatusText(status)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Details{Type: "about:blank", Title: title, Status: status, Detail: detail})
}
