// Package slacktest is a fake of the few Slack endpoints Vigia uses, for
// tests: the Web API methods chat.postMessage and chat.update, and one
// incoming webhook. It keeps the messages it was sent, so that a test can
// assert what people would see, and it can be made to fail the way Slack
// does (rate limits, 5xx, an unknown channel, a server that is down).
//
// It answers what Slack answers, as far as Vigia can tell the difference:
// HTTP 200 with {"ok":false,"error":"..."} for API errors (invalid_auth,
// not_authed, channel_not_found, message_not_found, invalid_blocks with
// response_metadata.messages, msg_too_long, no_text), 429 with Retry-After
// in seconds for rate limits, "ok" in plain text from the webhook. It is
// stricter than Slack in two places, to catch bugs rather than hide them:
// chat.update takes only a channel id (Slack documents that, but is lenient
// with some token types), and a thread_ts must name a message of the
// channel (thread_not_found otherwise).
//
// The block checks cover the limits Vigia can hit (50 blocks, header text
// 150 characters, section text 3000, 10 fields of 2000 each, 10 context
// elements, no emoji flag on mrkdwn), not the whole of Block Kit.
package slacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Token is the only bot token the fake accepts.
const Token = "xoxb-0000000000-vigia-test"

// WebhookChannel is the channel id the incoming webhook posts to: a Slack
// webhook is bound to the channel it was created for.
const WebhookChannel = "CWEBHOOK0"

// webhookPath is the path of the one incoming webhook; like Slack's, the
// URL is the secret, there is no token.
const webhookPath = "/services/T0000/B0000/vigiatestsecret"

// Message is a message as the fake holds it now (after any updates).
type Message struct {
	Channel  string          // channel id
	TS       string          // the message's ts: its id in the channel
	ThreadTS string          // ts of the thread's parent for a reply, "" otherwise
	Text     string          // the top-level text (notification fallback)
	Blocks   json.RawMessage // the blocks as sent, nil when none
	Decoded  []any           // Blocks decoded as generic JSON
	Updates  int             // how many chat.update calls changed it
	Webhook  bool            // posted through the incoming webhook
}

// BlockText returns every text of the message's blocks (header, section
// text and fields, context elements), one per line, for assertions on
// what a reader sees.
func (m Message) BlockText() string {
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if t, ok := v["text"].(string); ok {
				b.WriteString(t)
				b.WriteByte('\n')
			}
			for _, k := range []string{"text", "fields", "elements"} {
				if c, ok := v[k]; ok {
					walk(c)
				}
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(m.Decoded)
	return b.String()
}

// Call is one request the fake received.
type Call struct {
	Method  string // chat.postMessage, chat.update, webhook, or the path of an unknown one
	Channel string // the channel as the caller named it
	Status  int    // HTTP status answered; 0 when the connection was dropped (SetDown)
	Error   string // Slack error code of an ok:false answer (or webhook error body)
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu         sync.Mutex
	channels   map[string]string // name without # → id
	ids        map[string]bool
	msgs       []*Message
	calls      []Call
	seq        int64 // ts counter
	failN      int
	failStatus int
	failAfter  time.Duration
	failCode   string // FailNextError: ok:false code instead of a status
	down       bool
}

// New starts a fake bound to 127.0.0.1, closed when the test ends. It
// knows no channel until AddChannel.
func New(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("slacktest: listen: %v", err)
	}
	s := &Server{channels: map[string]string{}, ids: map[string]bool{WebhookChannel: true}}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Listener.Close()
	s.srv.Listener = l
	s.srv.Start()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server; calls made afterwards fail with connection
// refused. It is safe to call more than once.
func (s *Server) Close() { s.srv.Close() }

// APIURL is the Web API base URL, ending in "/", to pass to
// slack.OptionAPIURL (Options.APIURL).
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// WebhookURL is the incoming-webhook URL.
func (s *Server) WebhookURL() string { return s.srv.URL + webhookPath }

// AddChannel makes a channel known and returns its id ("C0123", "C0124",
// ...). name may be given with or without "#"; adding a name twice
// returns the same id. Callers may then post to "#name", "name" or the id.
func (s *Server) AddChannel(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = strings.TrimPrefix(name, "#")
	if id, ok := s.channels[name]; ok {
		return id
	}
	id := fmt.Sprintf("C%04X", 0x0123+len(s.channels))
	s.channels[name] = id
	s.ids[id] = true
	return id
}

// Messages returns a copy of the messages as they are now, in the order
// they were posted.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = *m
		out[i].Blocks = bytes.Clone(m.Blocks)
		out[i].Decoded = decodeBlocks(m.Blocks)
	}
	return out
}

// Calls returns the requests received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// FailNext makes the next n requests (any method, the webhook included)
// answer with HTTP status, before the token is even looked at, as Slack's
// front end does. A 429 carries Retry-After in whole seconds (rounded up)
// when retryAfter > 0, and {"ok":false,"error":"ratelimited"}.
func (s *Server) FailNext(n, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus, s.failAfter, s.failCode = n, status, retryAfter, ""
}

// FailNextError makes the next n Web API requests answer HTTP 200 with
// {"ok":false,"error":code}, as Slack does for internal_error,
// fatal_error, ratelimited and the like. The webhook answers 500 with code.
func (s *Server) FailNextError(n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus, s.failAfter, s.failCode = n, 0, 0, code
}

// SetDown makes every request (true) have its connection closed without
// an answer, as a crashed server or a broken proxy does: clients see a
// transport error (EOF or connection reset), not an HTTP status. For a
// refused connection, use Close.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	if r.URL.Path == webhookPath {
		method = "webhook"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.calls = append(s.calls, Call{Method: method})
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // closes the connection too
	}
	if s.failN > 0 {
		s.failN--
		s.fail(w, method)
		return
	}
	if r.Method != http.MethodPost {
		s.apiError(w, Call{Method: method}, "invalid_request", http.StatusMethodNotAllowed)
		return
	}
	if method == "webhook" {
		s.webhook(w, r)
		return
	}
	req, err := parse(r)
	if err != nil {
		s.apiError(w, Call{Method: method}, "invalid_form_data", http.StatusOK)
		return
	}
	c := Call{Method: method, Channel: req.str("channel")}
	switch tok := req.token; {
	case tok == "":
		s.apiError(w, c, "not_authed", http.StatusOK)
		return
	case tok != Token:
		s.apiError(w, c, "invalid_auth", http.StatusOK)
		return
	}
	switch method {
	case "chat.postMessage":
		s.postMessage(w, c, req)
	case "chat.update":
		s.update(w, c, req)
	default:
		s.apiError(w, c, "unknown_method", http.StatusOK)
	}
}

// fail answers a request FailNext or FailNextError chose to fail.
func (s *Server) fail(w http.ResponseWriter, method string) {
	c := Call{Method: method, Status: s.failStatus, Error: s.failCode}
	if s.failCode != "" {
		c.Status = http.StatusOK
		if method == "webhook" {
			c.Status = http.StatusInternalServerError
			s.calls = append(s.calls, c)
			http.Error(w, s.failCode, c.Status)
			return
		}
		s.calls = append(s.calls, c)
		writeJSON(w, c.Status, map[string]any{"ok": false, "error": s.failCode})
		return
	}
	s.calls = append(s.calls, c)
	if s.failStatus == http.StatusTooManyRequests {
		if s.failAfter > 0 {
			secs := int64((s.failAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
		writeJSON(w, s.failStatus, map[string]any{"ok": false, "error": "ratelimited"})
		return
	}
	// Slack's front end answers 5xx with an HTML page, which clients do not parse.
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(s.failStatus)
	fmt.Fprintf(w, "<html><body>%d %s</body></html>", s.failStatus, http.StatusText(s.failStatus))
}

func (s *Server) apiError(w http.ResponseWriter, c Call, code string, status int, messages ...string) {
	c.Status, c.Error = status, code
	s.calls = append(s.calls, c)
	body := map[string]any{"ok": false, "error": code}
	if len(messages) > 0 {
		body["response_metadata"] = map[string]any{"messages": messages}
	}
	writeJSON(w, status, body)
}

func (s *Server) postMessage(w http.ResponseWriter, c Call, req request) {
	id, ok := s.channelID(c.Channel)
	if !ok {
		s.apiError(w, c, "channel_not_found", http.StatusOK)
		return
	}
	m := &Message{Channel: id, ThreadTS: req.str("thread_ts"), Text: req.str("text"), Blocks: req.blocks}
	if code, msgs := s.check(m); code != "" {
		s.apiError(w, c, code, http.StatusOK, msgs...)
		return
	}
	if m.ThreadTS != "" && s.find(id, m.ThreadTS) == nil {
		s.apiError(w, c, "thread_not_found", http.StatusOK)
		return
	}
	s.seq++
	m.TS = tsOf(s.seq)
	s.msgs = append(s.msgs, m)
	c.Status = http.StatusOK
	s.calls = append(s.calls, c)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": id, "ts": m.TS, "message": messageJSON(m)})
}

func (s *Server) update(w http.ResponseWriter, c Call, req request) {
	if !s.ids[c.Channel] {
		s.apiError(w, c, "channel_not_found", http.StatusOK)
		return
	}
	m := s.find(c.Channel, req.str("ts"))
	if m == nil {
		s.apiError(w, c, "message_not_found", http.StatusOK)
		return
	}
	// Like Slack, an update without blocks keeps the message's blocks (an
	// empty array removes them), and one without text keeps its text.
	upd := &Message{Channel: m.Channel, Text: m.Text, Blocks: m.Blocks}
	if _, ok := req.params["text"]; ok {
		upd.Text = req.str("text")
	}
	if req.blocks != nil {
		upd.Blocks = req.blocks
		if string(req.blocks) == "[]" {
			upd.Blocks = nil
		}
	}
	if code, msgs := s.check(upd); code != "" {
		s.apiError(w, c, code, http.StatusOK, msgs...)
		return
	}
	m.Text, m.Blocks = upd.Text, upd.Blocks
	m.Updates++
	c.Status = http.StatusOK
	s.calls = append(s.calls, c)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS, "text": m.Text, "message": messageJSON(m)})
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	c := Call{Method: "webhook"}
	var body struct {
		Text   string          `json:"text"`
		Blocks json.RawMessage `json:"blocks"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		s.webhookError(w, c, "invalid_payload", http.StatusBadRequest)
		return
	}
	m := &Message{Channel: WebhookChannel, Text: body.Text, Blocks: nullToNil(body.Blocks), Webhook: true}
	if code, _ := s.check(m); code != "" {
		s.webhookError(w, c, code, http.StatusBadRequest)
		return
	}
	s.seq++
	m.TS = tsOf(s.seq)
	s.msgs = append(s.msgs, m)
	c.Status = http.StatusOK
	s.calls = append(s.calls, c)
	w.Header().Set("Content-Type", "text/html")
	_, _ = w.Write([]byte("ok"))
}

func (s *Server) webhookError(w http.ResponseWriter, c Call, code string, status int) {
	c.Status, c.Error = status, code
	s.calls = append(s.calls, c)
	http.Error(w, code, status)
}

// channelID resolves "#name", "name" or an id.
func (s *Server) channelID(ch string) (string, bool) {
	if s.ids[ch] {
		return ch, true
	}
	id, ok := s.channels[strings.TrimPrefix(ch, "#")]
	return id, ok
}

func (s *Server) find(channel, ts string) *Message {
	for _, m := range s.msgs {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

// check validates a message's text and blocks; it returns Slack's error
// code and messages, "" when the message is fine.
func (s *Server) check(m *Message) (code string, messages []string) {
	if utf8.RuneCountInString(m.Text) > 40000 {
		return "msg_too_long", nil
	}
	if len(m.Blocks) == 0 {
		if m.Text == "" {
			return "no_text", nil
		}
		return "", nil
	}
	var blocks []any
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		return "invalid_blocks_format", nil
	}
	if msgs := checkBlocks(blocks); len(msgs) > 0 {
		return "invalid_blocks", msgs
	}
	return "", nil
}

// checkBlocks returns one message per limit a block breaks, in Slack's
// style ("[ERROR] ... [json-pointer:/blocks/0/text/text]").
func checkBlocks(blocks []any) []string {
	var errs []string
	bad := func(ptr, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("[ERROR] "+format+" [json-pointer:%s]", append(args, ptr)...))
	}
	text := func(ptr string, v any, max int, plainOnly bool) {
		o, ok := v.(map[string]any)
		if !ok {
			bad(ptr, "must be a text object")
			return
		}
		typ, _ := o["type"].(string)
		t, _ := o["text"].(string)
		switch {
		case typ != "plain_text" && typ != "mrkdwn":
			bad(ptr+"/type", "must be one of plain_text, mrkdwn")
		case plainOnly && typ != "plain_text":
			bad(ptr+"/type", "must be plain_text")
		case typ == "mrkdwn" && o["emoji"] != nil:
			bad(ptr+"/emoji", "not allowed on mrkdwn")
		}
		if n := utf8.RuneCountInString(t); n == 0 || n > max {
			bad(ptr+"/text", "must be between 1 and %d characters, got %d", max, n)
		}
	}
	if len(blocks) == 0 || len(blocks) > 50 {
		bad("/blocks", "must have between 1 and 50 items, got %d", len(blocks))
	}
	for i, b := range blocks {
		ptr := fmt.Sprintf("/blocks/%d", i)
		o, ok := b.(map[string]any)
		if !ok {
			bad(ptr, "must be an object")
			continue
		}
		switch o["type"] {
		case "header":
			text(ptr+"/text", o["text"], 150, true)
		case "section":
			fields, _ := o["fields"].([]any)
			if o["text"] == nil && len(fields) == 0 {
				bad(ptr, "must have text or fields")
			}
			if o["text"] != nil {
				text(ptr+"/text", o["text"], 3000, false)
			}
			if len(fields) > 10 {
				bad(ptr+"/fields", "must have at most 10 items, got %d", len(fields))
			}
			for j, f := range fields {
				text(fmt.Sprintf("%s/fields/%d", ptr, j), f, 2000, false)
			}
		case "context":
			els, _ := o["elements"].([]any)
			if len(els) == 0 || len(els) > 10 {
				bad(ptr+"/elements", "must have between 1 and 10 items, got %d", len(els))
			}
			for j, e := range els {
				text(fmt.Sprintf("%s/elements/%d", ptr, j), e, 3000, false)
			}
		case "divider":
		default:
			// Block types Vigia does not send: not checked.
		}
	}
	return errs
}

// request is a Web API call's parameters, from a form (what slack-go sends
// for chat.*) or a JSON body.
type request struct {
	token  string
	params map[string]any
	blocks json.RawMessage
}

func (r request) str(k string) string {
	s, _ := r.params[k].(string)
	return s
}

func parse(r *http.Request) (request, error) {
	var req request
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		req.token = tok
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		if err := json.NewDecoder(r.Body).Decode(&req.params); err != nil {
			return req, err
		}
		if b, ok := req.params["blocks"]; ok && b != nil {
			raw, err := json.Marshal(b)
			if err != nil {
				return req, err
			}
			req.blocks = raw
		}
		return req, nil
	}
	if err := r.ParseForm(); err != nil {
		return req, err
	}
	req.params = map[string]any{}
	for k := range r.PostForm {
		req.params[k] = r.PostForm.Get(k)
	}
	if req.token == "" {
		req.token = r.PostForm.Get("token") // Slack takes the token from the body too; slack-go sends it there
	}
	if b := r.PostForm.Get("blocks"); b != "" {
		req.blocks = json.RawMessage(b)
	}
	return req, nil
}

// tsOf returns the n-th ts: "1700000000.000100", "1700000000.000200", ...
func tsOf(n int64) string {
	micro := int64(1700000000_000000) + n*100
	return fmt.Sprintf("%d.%06d", micro/1_000_000, micro%1_000_000)
}

func messageJSON(m *Message) map[string]any {
	j := map[string]any{"type": "message", "user": "U0VIGIA", "bot_id": "B0VIGIA", "text": m.Text, "ts": m.TS}
	if m.ThreadTS != "" {
		j["thread_ts"] = m.ThreadTS
	}
	if d := decodeBlocks(m.Blocks); d != nil {
		j["blocks"] = d
	}
	return j
}

func decodeBlocks(raw json.RawMessage) []any {
	if len(raw) == 0 {
		return nil
	}
	var d []any
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil
	}
	return d
}

func nullToNil(raw json.RawMessage) json.RawMessage {
	if string(raw) == "null" {
		return nil
	}
	return raw
}

func writeJSON(w http.ResponseWriter, status int, v map[string]any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
