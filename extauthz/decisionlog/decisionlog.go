// Package decisionlog writes authorization decisions as JSON lines,
// asynchronously, through a bounded buffer.
//
// The request path never blocks on the log: when the buffer is full the
// entry is dropped and counted. Entries carry identities and policy IDs,
// never tokens, header values or query strings.
package decisionlog

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/meshguard/meshguard/internal/hashchain"
)

// Entry is one decision. Field names are part of the documented log format
// (docs/operations.md); add fields, don't rename them.
type Entry struct {
	Time       time.Time `json:"time"`
	DecisionID string    `json:"decision_id"`
	RequestID  string    `json:"request_id,omitempty"`
	Route      string    `json:"route,omitempty"`
	Service    string    `json:"service,omitempty"`
	PolicySet  string    `json:"policy_set,omitempty"`
	Mode       string    `json:"mode"`
	Allowed    bool      `json:"allowed"`
	Status     int       `json:"status"`
	Reason     string    `json:"reason"`
	// Detail explains a fail-closed denial (e.g. which policy set is missing).
	Detail        string        `json:"detail,omitempty"`
	Principal     string        `json:"principal,omitempty"`
	Action        string        `json:"action,omitempty"`
	SourceSPIFFE  string        `json:"source_spiffe_id,omitempty"`
	SourceAddress string        `json:"source_address,omitempty"`
	Method        string        `json:"method,omitempty"`
	Path          string        `json:"path,omitempty"`
	JWTProvider   string        `json:"jwt_provider,omitempty"`
	JWTError      string        `json:"jwt_error,omitempty"`
	Policies      []string      `json:"policies,omitempty"`
	Errors        []PolicyError `json:"errors,omitempty"`
	// WouldAllow is set in shadow mode: what enforcement would have done.
	WouldAllow  *bool    `json:"would_allow,omitempty"`
	WouldReason string   `json:"would_reason,omitempty"`
	Shadow      *Shadow  `json:"shadow,omitempty"`
	Rollout     *Rollout `json:"rollout,omitempty"`
	DurationUS  int64    `json:"duration_us"`
	// Request is the Cedar request evaluated, with decision_log.record_request.
	Request *Request `json:"request,omitempty"`
}

// Request is the Cedar request a decision evaluated, as `meshguard policy
// replay` needs it: the principal entity as the request made it (a token's
// claims and roles, a SPIFFE ID's attributes; static entities are merged at
// replay), the action, the resource and the whole context.
type Request struct {
	Principal cedar.Entity                       `json:"principal"`
	Action    types.ImplicitlyMarshaledEntityUID `json:"action"`
	Resource  types.ImplicitlyMarshaledEntityUID `json:"resource"`
	Context   cedar.Record                       `json:"context"`
}

// PolicyError is a policy that failed to evaluate.
type PolicyError struct {
	Policy  string `json:"policy"`
	Message string `json:"message"`
}

// Shadow is the outcome of the candidate set evaluated beside the enforced one.
type Shadow struct {
	PolicySet string   `json:"policy_set"`
	Allowed   bool     `json:"allowed"`
	Policies  []string `json:"policies,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// Rollout is what both sets of a rollout route decided. Enforced names the
// set whose decision was enforced: the candidate for callers in a canary's
// share, the route's policy_set otherwise.
type Rollout struct {
	Candidate string `json:"candidate"`
	Stage     string `json:"stage"`
	Canary    string `json:"canary,omitempty"`
	Revision  string `json:"revision,omitempty"`
	Enforced  string `json:"enforced"`
	// Outcome is same, allow_to_deny, deny_to_allow or error.
	Outcome           string   `json:"outcome"`
	CurrentAllowed    bool     `json:"current_allowed"`
	CandidateAllowed  bool     `json:"candidate_allowed"`
	CandidatePolicies []string `json:"candidate_policies,omitempty"`
	CandidateErrors   int      `json:"candidate_errors,omitempty"`
	Error             string   `json:"error,omitempty"`
}

// Logger is an asynchronous decision log. A nil *Logger discards entries.
type Logger struct {
	// Entries are queued by value: the buffer (about 400 bytes an entry)
	// is allocated once, and logging allocates nothing. Queuing pointers
	// cost an allocation per decision, and measured under load it made
	// the authorizer's CPU per call 5-10 % higher.
	ch      chan Entry
	out     io.Writer // given whole lines, one batch a write
	opts    options
	onDrop  func()
	dropped atomic.Uint64
	done    chan struct{}

	mu     sync.RWMutex // guards closed against a send on the closed channel
	closed bool
}

// Option configures a Logger.
type Option func(*options)

type options struct {
	chain   *hashchain.Chain // nil: lines are not chained
	onError func(error)
}

// WithChain makes the log a hash chain continuing c (hashchain.Resume of
// its file): every line carries the SHA-256 of the line before, so
// `meshguard audit verify` finds an edited, removed or inserted line.
func WithChain(c hashchain.Chain) Option {
	return func(o *options) { o.chain = &c }
}

// WithErrorHandler receives write and rotation errors. The logger keeps
// going after one: the entries a failed write held are counted as dropped.
func WithErrorHandler(f func(error)) Option {
	return func(o *options) { o.onError = f }
}

// Rotator is a writer that can start a new file between lines
// (logfile.File); the logger asks after every batch.
type Rotator interface {
	RotateIfDue() error
}

// New starts a logger writing to w with room for buffer pending entries,
// reserved up front.
// onDrop (may be nil) is called for each entry dropped because the buffer
// is full or its write failed.
func New(w io.Writer, buffer int, onDrop func(), opts ...Option) *Logger {
	if onDrop == nil {
		onDrop = func() {}
	}
	l := &Logger{
		ch:     make(chan Entry, buffer),
		out:    w,
		onDrop: onDrop,
		done:   make(chan struct{}),
	}
	for _, o := range opts {
		o(&l.opts)
	}
	if l.opts.onError == nil {
		l.opts.onError = func(error) {}
	}
	go l.run()
	return l
}

// Log queues a copy of e without blocking; e may be reused at once. It
// reports false when the entry was dropped.
func (l *Logger) Log(e *Entry) bool {
	if l == nil {
		return true
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return false
	}
	select {
	case l.ch <- *e:
		return true
	default:
		l.dropped.Add(1)
		l.onDrop()
		return false
	}
}

// Dropped is the number of entries dropped so far.
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Pending is the number of entries queued and not yet written.
func (l *Logger) Pending() int {
	if l == nil {
		return 0
	}
	return len(l.ch)
}

// batchPause is how long the writer lets entries gather after writing a
// batch. Under load it turns one wakeup and one write(2) per decision into
// one per batch (measured: the per-decision flush was ~3% of the
// authorizer's CPU at 10k decisions/s); an idle log still writes a line as
// soon as it arrives. At 4,096 buffered entries the pause only drops
// entries above ~800k decisions/s.
const batchPause = 5 * time.Millisecond

// writeChunk bounds the bytes the logger gathers before a write.
const writeChunk = 64 << 10

func (l *Logger) run() {
	defer close(l.done)
	var (
		line  = make([]byte, 0, 1024)
		chunk = make([]byte, 0, writeChunk+4096)
		n     int // entries in chunk
	)
	add := func(e *Entry) {
		line = e.AppendJSON(line[:0])
		if l.opts.chain != nil {
			line, _ = l.opts.chain.Seal(line)
		} else {
			line = append(line, '\n')
		}
		chunk, n = append(chunk, line...), n+1
		if len(chunk) >= writeChunk {
			l.write(chunk, n)
			chunk, n = chunk[:0], 0
		}
	}
	for e := range l.ch {
		// Write e and what queued behind it in one write. Only this
		// goroutine receives, so those entries are there to take, even
		// after Close.
		add(&e)
		for range len(l.ch) {
			next := <-l.ch
			add(&next)
		}
		if n > 0 {
			l.write(chunk, n)
			chunk, n = chunk[:0], 0
		}
		if r, ok := l.out.(Rotator); ok {
			if err := r.RotateIfDue(); err != nil {
				l.opts.onError(fmt.Errorf("decision log: %w", err))
			}
		}
		time.Sleep(batchPause)
	}
}

// write writes whole lines, n entries. A failed write (a full disk) loses
// them — counted, and in a chained log the gap breaks the chain where it
// is, as it should — and the next batch tries again.
func (l *Logger) write(chunk []byte, n int) {
	if _, err := l.out.Write(chunk); err != nil {
		l.dropped.Add(uint64(n))
		for range n {
			l.onDrop()
		}
		l.opts.onError(fmt.Errorf("decision log: %d entries lost: %w", n, err))
	}
}

// Close stops accepting entries, writes those queued and returns when done
// or when ctx ends. Entries logged after Close are dropped.
func (l *Logger) Close(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.ch)
	}
	l.mu.Unlock()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
