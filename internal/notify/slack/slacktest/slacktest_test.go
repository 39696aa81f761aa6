package slacktest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"vigia/internal/notify/slack/slacktest"
)

// call posts body to the fake's method, as JSON when body is a string,
// as a form otherwise, and decodes the answer.
func call(t *testing.T, srv *slacktest.Server, method, token string, body any) map[string]any {
	t.Helper()
	var req *http.Request
	var err error
	switch b := body.(type) {
	case string:
		req, err = http.NewRequest(http.MethodPost, srv.APIURL()+method, strings.NewReader(b))
		if err == nil {
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
		}
	case url.Values:
		req, err = http.NewRequest(http.MethodPost, srv.APIURL()+method, strings.NewReader(b.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s: %d, body not JSON: %v", method, resp.StatusCode, err)
	}
	return out
}

func TestServer(t *testing.T) {
	srv := slacktest.New(t)
	id := srv.AddChannel("#ops")
	if again := srv.AddChannel("ops"); again != id || !strings.HasPrefix(id, "C") {
		t.Fatalf("channel ids %q, %q", id, again)
	}
	blocks := `[{"type":"header","text":{"type":"plain_text","text":"hi"}}]`

	first := call(t, srv, "chat.postMessage", slacktest.Token, `{"channel":"#ops","text":"one","blocks":`+blocks+`}`)
	second := call(t, srv, "chat.postMessage", slacktest.Token, url.Values{"channel": {"ops"}, "text": {"two"}})
	if first["ok"] != true || first["channel"] != id || second["channel"] != id {
		t.Fatalf("answers %v, %v", first, second)
	}
	ts1, ts2 := first["ts"].(string), second["ts"].(string)
	if ts1 != "1700000000.000100" || ts2 <= ts1 {
		t.Errorf("ts %q then %q, want increasing from 1700000000.000100", ts1, ts2)
	}

	cases := []struct {
		name, method, token string
		body                any
		code                string
	}{
		{"no token", "chat.postMessage", "", `{"channel":"ops","text":"x"}`, "not_authed"},
		{"wrong token", "chat.postMessage", "xoxb-other", `{"channel":"ops","text":"x"}`, "invalid_auth"},
		{"token in the form", "chat.postMessage", "", url.Values{"token": {"xoxb-other"}, "channel": {"ops"}, "text": {"x"}}, "invalid_auth"},
		{"unknown channel", "chat.postMessage", slacktest.Token, `{"channel":"#nope","text":"x"}`, "channel_not_found"},
		{"no text", "chat.postMessage", slacktest.Token, `{"channel":"ops"}`, "no_text"},
		{"unknown thread", "chat.postMessage", slacktest.Token, `{"channel":"ops","text":"x","thread_ts":"1.2"}`, "thread_not_found"},
		{"header too long", "chat.postMessage", slacktest.Token,
			`{"channel":"ops","blocks":[{"type":"header","text":{"type":"plain_text","text":"` + strings.Repeat("h", 151) + `"}}]}`, "invalid_blocks"},
		{"update by name", "chat.update", slacktest.Token, `{"channel":"#ops","ts":"` + ts1 + `","text":"x"}`, "channel_not_found"},
		{"update unknown ts", "chat.update", slacktest.Token, `{"channel":"` + id + `","ts":"1.2","text":"x"}`, "message_not_found"},
		{"unknown method", "chat.delete", slacktest.Token, `{}`, "unknown_method"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := call(t, srv, c.method, c.token, c.body)
			if got["ok"] != false || got["error"] != c.code {
				t.Errorf("answer %v, want error %s", got, c.code)
			}
		})
	}

	upd := call(t, srv, "chat.update", slacktest.Token, `{"channel":"`+id+`","ts":"`+ts1+`","text":"one, edited"}`)
	reply := call(t, srv, "chat.postMessage", slacktest.Token, `{"channel":"`+id+`","text":"in thread","thread_ts":"`+ts1+`"}`)
	if upd["ok"] != true || upd["ts"] != ts1 || reply["ok"] != true {
		t.Fatalf("update %v, reply %v", upd, reply)
	}
	msgs := srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	if m := msgs[0]; m.Text != "one, edited" || m.Updates != 1 || m.BlockText() != "hi\n" {
		t.Errorf("updated message %+v: want the new text, the blocks kept (the update sent none), 1 update", m)
	}
	if msgs[2].ThreadTS != ts1 {
		t.Errorf("reply thread_ts %q, want %q", msgs[2].ThreadTS, ts1)
	}
	msgs[0].Text = "changed by the caller"
	if srv.Messages()[0].Text != "one, edited" {
		t.Error("Messages does not return a copy")
	}
}
