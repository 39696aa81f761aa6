package webhook_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"vigia/internal/webhook"
)

// A sender's receiver: read the raw body (bounded), verify the signature
// over exactly those bytes before parsing anything, drop duplicates by
// event id, and answer 2xx only once the event is handled. Any 5xx makes
// Vigia retry; a 4xx makes it give the event up.
func Example_receiver() {
	// Both secrets while rotating: the one in use and the one being retired.
	secrets := []string{"whsec-new", "whsec-old"}
	var (
		mu   sync.Mutex
		seen = map[string]bool{} // in production: a table with a unique key, kept a few days
	)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		err = webhook.Verify(secrets, r.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute)
		switch {
		case errors.Is(err, webhook.ErrTooOld), errors.Is(err, webhook.ErrSkew):
			// Genuine but out of the window: a replay, or a clock to fix.
			http.Error(w, "stale signature", http.StatusUnauthorized)
			return
		case err != nil:
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		id := r.Header.Get(webhook.HeaderEventID)
		mu.Lock()
		dup := seen[id]
		seen[id] = true
		mu.Unlock()
		if dup {
			w.WriteHeader(http.StatusOK) // delivered before; say so, or it is retried
			return
		}
		fmt.Printf("%s %s %s\n", r.Header.Get(webhook.HeaderEventType), id, body)
		w.WriteHeader(http.StatusNoContent)
	})

	// What Vigia sends, twice (a retry), then a forgery.
	send := func(header string) int {
		body := `{"use_case":"marketing","to":"reserve"}`
		req := httptest.NewRequest(http.MethodPost, "/hooks/vigia", strings.NewReader(body))
		req.Header.Set(webhook.HeaderSignature, header)
		req.Header.Set(webhook.HeaderEventID, "01JZ8Q6K3M")
		req.Header.Set(webhook.HeaderEventType, "route.changed")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Code
	}
	body := []byte(`{"use_case":"marketing","to":"reserve"}`)
	fmt.Println(send(webhook.Sign([]string{"whsec-old"}, time.Now(), body)))
	fmt.Println(send(webhook.Sign([]string{"whsec-new", "whsec-old"}, time.Now(), body)))
	fmt.Println(send(webhook.Sign([]string{"guess"}, time.Now(), body)))
	// Output:
	// route.changed 01JZ8Q6K3M {"use_case":"marketing","to":"reserve"}
	// 204
	// 200
	// 401
}
