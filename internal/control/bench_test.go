package control

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"vigia/internal/route"
)

// benchLog is a Log over a fixed table, for benchmarks of the read paths.
type benchLog struct{ t *route.Table }

func (l benchLog) Propose(ctx context.Context, c route.Command) (route.Result, error) {
	return route.Result{}, nil
}
func (l benchLog) Table() *route.Table { return l.t }

// BenchmarkPickHandler measures one pick request through the handler
// (auth, body, pick, JSON answer), without the network: the profile of
// the server side of scripts/bench-pick.sh.
func BenchmarkPickHandler(b *testing.B) {
	f, err := route.Parse("bench.yaml", []byte(`
use_cases:
  - name: sales
    channels: [whatsapp, sms]
    numbers:
      - {id: "1", rate: 1000000/s, weight: 1}
      - {id: "2", rate: 1000000/s, weight: 3}
      - {id: "3", rate: 1000000/s, role: reserve}
`))
	if err != nil {
		b.Fatal(err)
	}
	t := route.NewTable(f, route.NewState())
	api, err := New(Options{Log: benchLog{t}, Picker: route.NewPicker(t, 1),
		Tokens: []Token{{Name: "s", SHA256: HashToken("sender-token-0123456789"), Scopes: []string{ScopePick}}}})
	if err != nil {
		b.Fatal(err)
	}
	h := api.Handler()
	now := time.Now()
	_ = now
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/api/v1/routes/sales/pick", strings.NewReader(`{"recipient":"u1"}`))
			req.Header.Set("Authorization", "Bearer sender-token-0123456789")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("pick: %d %s", w.Code, w.Body)
			}
		}
	})
}
