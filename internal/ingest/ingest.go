// Package ingest is the HTTP front of Vigia: it receives the webhooks of the
// WhatsApp Cloud API and the status callbacks of the SMS and e-mail fallback
// channels, refuses anything not correctly signed, normalizes the rest into
// events and answers 200 only once Kafka has acknowledged every record the
// request produced. When Kafka does not acknowledge in time the answer is
// 503, so that the sender retries: nothing is ever acknowledged that is not
// durable.
package ingest

import (
	"context"
	"crypto/ecdsa"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"vigia/internal/event"
	"vigia/internal/fallback/sendgrid"
	"vigia/internal/fallback/twilio"
	"vigia/internal/meta"
	"vigia/internal/problem"
)

// Publisher writes records and returns once they are acknowledged;
// *kafka.Writer with RequiredAcks=all is one.
type Publisher interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Topics names where records go.
type Topics struct {
	Events, Raw, DLQ string
	// RawEnabled copies every signed payload to Raw, for replay after a
	// parser fix. Off by default: the raw topic holds personal data.
	RawEnabled bool
}

// MetaOptions configures the WhatsApp endpoint.
type MetaOptions struct {
	VerifyToken string
	AppSecrets  [][]byte
	Normalizer  *meta.Normalizer
}

// TwilioOptions configures the SMS status callback endpoint.
type TwilioOptions struct {
	AuthTokens [][]byte
	// PublicBaseURL is scheme://host as Twilio calls it; the signature
	// covers the full URL, which a proxy in front of ingest may change.
	PublicBaseURL string
	Normalizer    *twilio.Normalizer
}

// SendGridOptions configures the e-mail event webhook endpoint.
type SendGridOptions struct {
	Keys       []*ecdsa.PublicKey
	MaxSkew    time.Duration
	Normalizer *sendgrid.Normalizer
}

// Options configures New. Logger, Registerer and Now may be nil.
type Options struct {
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
	Publisher      Publisher
	Topics         Topics
	Meta           MetaOptions
	Twilio         *TwilioOptions   // nil: endpoint disabled (404)
	SendGrid       *SendGridOptions // nil: endpoint disabled (404)
	MaxBodyBytes   int64
	PublishTimeout time.Duration
	Now            func() time.Time
}

// Server handles the webhook endpoints.
type Server struct {
	o       Options
	log     *slog.Logger
	m       *metrics
	mux     *http.ServeMux
	lastErr sync.Map // source -> last publish error text logged
}

// Paths of the webhook endpoints.
const (
	PathWhatsApp = "/webhooks/whatsapp"
	PathTwilio   = "/webhooks/twilio"
	PathSendGrid = "/webhooks/sendgrid"
)

// New returns a Server.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 8 << 20
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 10 * time.Second
	}
	s := &Server{o: o, log: o.Logger, m: newMetrics(o.Registerer), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET "+PathWhatsApp, s.verifyHandshake)
	s.mux.HandleFunc("POST "+PathWhatsApp, s.timed(SourceMeta, s.whatsapp))
	if o.Twilio != nil {
		s.mux.HandleFunc("POST "+PathTwilio, s.timed(SourceTwilio, s.twilio))
	}
	if o.SendGrid != nil {
		s.mux.HandleFunc("POST "+PathSendGrid, s.timed(SourceSendGrid, s.sendgrid))
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// statusRecorder remembers the status code for the request metric.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) { r.code = code; r.ResponseWriter.WriteHeader(code) }

func (s *Server) timed(source string, h func(http.ResponseWriter, *http.Request, time.Time)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := s.o.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h(rec, r, start)
		s.m.requests.WithLabelValues(source, strconv.Itoa(rec.code)).Inc()
		s.m.requestDuration.WithLabelValues(source).Observe(s.o.Now().Sub(start).Seconds())
	}
}

// verifyHandshake answers Meta's subscription check: the challenge back when
// the verify token matches, 403 otherwise.
func (s *Server) verifyHandshake(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get("hub.verify_token")
	if q.Get("hub.mode") != "subscribe" || s.o.Meta.VerifyToken == "" ||
		subtle.ConstantTimeCompare([]byte(token), []byte(s.o.Meta.VerifyToken)) != 1 {
		problem.Write(w, http.StatusForbidden, "", "hub.mode must be subscribe and hub.verify_token must match the configured token")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, q.Get("hub.challenge"))
}

// readBody reads the whole body within the size bound; false means an error
// answer was written.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			problem.Write(w, http.StatusRequestEntityTooLarge, "", "body larger than "+strconv.FormatInt(s.o.MaxBodyBytes, 10)+" bytes")
			return nil, false
		}
		problem.Write(w, http.StatusBadRequest, "", "could not read body")
		return nil, false
	}
	return body, true
}

func (s *Server) refuse(w http.ResponseWriter, source string, err error, missing bool) {
	reason := "mismatch"
	if missing {
		reason = "missing"
	}
	s.m.signatureFails.WithLabelValues(source, reason).Inc()
	problem.Write(w, http.StatusUnauthorized, "", err.Error())
}

func (s *Server) whatsapp(w http.ResponseWriter, r *http.Request, received time.Time) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	sig := r.Header.Get(meta.SignatureHeader)
	if err := meta.VerifySignature(body, sig, s.o.Meta.AppSecrets); err != nil {
		s.refuse(w, SourceMeta, err, errors.Is(err, meta.ErrNoSignature))
		return
	}
	b := s.newBatch(SourceMeta, received)
	res, err := s.o.Meta.Normalizer.Normalize(body, received)
	if err != nil {
		b.deadLetter("", "malformed", err.Error(), "", body, kafka.Header{Key: meta.SignatureHeader, Value: []byte(sig)})
	}
	b.add(res.Events, res.Rejects)
	if s.o.Topics.RawEnabled {
		b.raw(res.WABAID, body, kafka.Header{Key: meta.SignatureHeader, Value: []byte(sig)})
	}
	s.publish(w, r, b)
}

func (s *Server) twilio(w http.ResponseWriter, r *http.Request, received time.Time) {
	o := s.o.Twilio
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	base := o.PublicBaseURL
	if base == "" {
		base = requestBase(r)
	}
	fullURL := base + r.URL.RequestURI()
	sig := r.Header.Get(twilio.SignatureHeader)
	form, err := parseForm(body)
	if err != nil && sig != "" {
		// Twilio always sends a form: a body that is none cannot carry a
		// valid signature, and is refused like one that does not match.
		s.refuse(w, SourceTwilio, twilio.ErrBadSignature, false)
		return
	}
	if err := twilio.VerifySignature(fullURL, form, sig, o.AuthTokens); err != nil {
		s.refuse(w, SourceTwilio, err, errors.Is(err, twilio.ErrNoSignature))
		return
	}
	b := s.newBatch(SourceTwilio, received)
	ev, err := o.Normalizer.Normalize(form, r.URL.Query(), received)
	key := ev.WABAID
	if err != nil {
		key = o.Normalizer.WABAID
		reason := "malformed"
		if errors.Is(err, twilio.ErrUnknownStatus) {
			reason = "unknown_status"
		}
		b.deadLetter(key, reason, err.Error(), "", body,
			kafka.Header{Key: "vigia-url", Value: []byte(fullURL)}, kafka.Header{Key: twilio.SignatureHeader, Value: []byte(sig)})
	} else {
		b.add([]event.Event{ev}, nil)
	}
	if s.o.Topics.RawEnabled {
		b.raw(key, body, kafka.Header{Key: twilio.SignatureHeader, Value: []byte(sig)}, kafka.Header{Key: "vigia-url", Value: []byte(fullURL)})
	}
	s.publish(w, r, b)
}

func (s *Server) sendgrid(w http.ResponseWriter, r *http.Request, received time.Time) {
	o := s.o.SendGrid
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	ts, sig := r.Header.Get(sendgrid.TimestampHeader), r.Header.Get(sendgrid.SignatureHeader)
	if err := sendgrid.VerifySignature(body, ts, sig, o.Keys, received, o.MaxSkew); err != nil {
		s.refuse(w, SourceSendGrid, err, errors.Is(err, sendgrid.ErrNoSignature))
		return
	}
	b := s.newBatch(SourceSendGrid, received)
	res, err := o.Normalizer.Normalize(body, received)
	if err != nil {
		b.deadLetter(o.Normalizer.WABAID, "malformed", err.Error(), "", body,
			kafka.Header{Key: sendgrid.SignatureHeader, Value: []byte(sig)}, kafka.Header{Key: sendgrid.TimestampHeader, Value: []byte(ts)})
	}
	b.add(res.Events, res.Rejects)
	if s.o.Topics.RawEnabled {
		b.raw(o.Normalizer.WABAID, body, kafka.Header{Key: sendgrid.SignatureHeader, Value: []byte(sig)}, kafka.Header{Key: sendgrid.TimestampHeader, Value: []byte(ts)})
	}
	s.publish(w, r, b)
}

// accepted is the body of a 200 answer.
type accepted struct {
	Events      int `json:"events"`
	DeadLetters int `json:"dead_letters"`
}

// publish writes the batch and answers: 200 once Kafka acknowledged all of
// it, 503 otherwise (the sender retries; downstream dedupes on event id).
func (s *Server) publish(w http.ResponseWriter, r *http.Request, b *batch) {
	if b.err != nil {
		problem.Write(w, http.StatusInternalServerError, "", "could not encode events")
		s.log.Error("encode events", "source", b.source, "err", b.err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.PublishTimeout)
	defer cancel()
	start := time.Now()
	err := s.o.Publisher.WriteMessages(ctx, b.msgs...)
	s.m.publishDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.publishFailures.WithLabelValues(b.source).Inc()
		s.logPublishError(b.source, err)
		w.Header().Set("Retry-After", "5")
		problem.Write(w, http.StatusServiceUnavailable, "", "events could not be made durable; retry later")
		return
	}
	s.logPublishError(b.source, nil)
	for kind, n := range b.kinds {
		s.m.events.WithLabelValues(b.source, string(kind)).Add(float64(n))
	}
	for reason, n := range b.dlqReasons {
		s.m.deadLetters.WithLabelValues(b.source, reason).Add(float64(n))
	}
	if b.hasRaw {
		s.m.rawRecords.Inc()
	}
	s.m.updatesPerPost.Observe(float64(b.events + b.deadLetters))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(accepted{Events: b.events, DeadLetters: b.deadLetters})
}

// logPublishError logs a publish failure only when it differs from the last
// one logged for the source, and logs the recovery once.
func (s *Server) logPublishError(source string, err error) {
	text := ""
	if err != nil {
		text = err.Error()
	}
	prev, _ := s.lastErr.Swap(source, text)
	if prev == nil {
		prev = ""
	}
	switch {
	case text != "" && prev != text:
		s.log.Warn("kafka did not acknowledge; answering 503", "source", source, "err", err)
	case text == "" && prev != "":
		s.log.Info("kafka acknowledges again", "source", source)
	}
}

// SetPublisher sets the publisher once the producer exists (the app creates
// the Server before it connects to Kafka).
func (s *Server) SetPublisher(p Publisher) { s.o.Publisher = p }
