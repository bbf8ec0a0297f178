package xds

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sync states of one resource type on one proxy, as istioctl proxy-status shows them.
const (
	Synced  = "SYNCED"   // the proxy ACKed the current version
	Stale   = "STALE"    // sent, not (yet) ACKed
	Nacked  = "NACKED"   // the proxy rejected the current version
	NotSent = "NOT SENT" // the proxy has not been sent this type
)

// TypeStatus is one resource type's state on one proxy.
type TypeStatus struct {
	State   string    `json:"state"`
	Current string    `json:"current_version"`
	Sent    string    `json:"sent_version,omitempty"`
	Acked   string    `json:"acked_version,omitempty"`
	LastAck time.Time `json:"last_ack,omitzero"`
	Error   string    `json:"error,omitempty"`
}

// ProxyStatus is one proxy (node) as the control plane sees it.
type ProxyStatus struct {
	Node      string                `json:"node"`
	Cluster   string                `json:"cluster,omitempty"`
	Connected bool                  `json:"connected"`
	Streams   int                   `json:"streams"`
	Types     map[string]TypeStatus `json:"types"`
}

// Tracker records what each proxy was sent and acknowledged. It also owns
// the control plane's xDS metrics.
type Tracker struct {
	mu      sync.Mutex
	proxies map[string]*proxy
	metrics *Metrics
}

type proxy struct {
	cluster string
	streams int
	types   map[string]*typeState
}

type typeState struct {
	current, sent, acked, nackedVersion, err string
	lastAck                                  time.Time
}

// Metrics are the control plane's Prometheus metrics.
type Metrics struct {
	Connected   prometheus.Gauge
	Pushes      *prometheus.CounterVec
	PushLatency *prometheus.HistogramVec
	Nacks       *prometheus.CounterVec
}

// NewMetrics registers the xDS metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshguard_xds_connected_proxies", Help: "Proxies with at least one open xDS stream."}),
		Pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_xds_pushes_total", Help: "xDS responses sent, by resource type."}, []string{"type"}),
		PushLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meshguard_xds_push_latency_seconds",
			Help:    "Time from a config version being set for a proxy to the proxy ACKing it, by type.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"type"}),
		Nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_xds_nacks_total", Help: "xDS responses rejected by proxies, by type."}, []string{"type"}),
	}
	reg.MustRegister(m.Connected, m.Pushes, m.PushLatency, m.Nacks)
	return m
}

// NewTracker creates a tracker; metrics may be nil.
func NewTracker(m *Metrics) *Tracker {
	return &Tracker{proxies: map[string]*proxy{}, metrics: m}
}

func (t *Tracker) get(node string) *proxy {
	p, ok := t.proxies[node]
	if !ok {
		p = &proxy{types: map[string]*typeState{}}
		t.proxies[node] = p
	}
	return p
}

func (p *proxy) typ(typ string) *typeState {
	s, ok := p.types[typ]
	if !ok {
		s = &typeState{}
		p.types[typ] = s
	}
	return s
}

func (t *Tracker) setSnapshot(node string, snap Snapshot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.get(node)
	for typ, ts := range snap {
		p.typ(typ).current = ts.Version
	}
}

func (t *Tracker) forget(node string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.proxies[node]; ok && p.streams == 0 {
		delete(t.proxies, node)
	}
}

func (t *Tracker) sent(node, typ, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.get(node).typ(typ).sent = version
	if t.metrics != nil {
		t.metrics.Pushes.WithLabelValues(shortType(typ)).Inc()
	}
}

func (t *Tracker) ack(node, typ, version string, setAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.get(node).typ(typ)
	first := s.acked != version
	s.acked, s.lastAck = version, time.Now()
	if version == s.current {
		s.err, s.nackedVersion = "", ""
	}
	if first && version == s.current && !setAt.IsZero() && t.metrics != nil {
		t.metrics.PushLatency.WithLabelValues(shortType(typ)).Observe(time.Since(setAt).Seconds())
	}
}

func (t *Tracker) nack(node, typ, version, msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.get(node).typ(typ)
	s.nackedVersion, s.err = version, truncateMsg(msg)
	if t.metrics != nil {
		t.metrics.Nacks.WithLabelValues(shortType(typ)).Inc()
	}
}

// StreamOpened and StreamClosed count a proxy's streams.
func (t *Tracker) StreamOpened(node, cluster string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.get(node)
	if p.streams == 0 && t.metrics != nil {
		t.metrics.Connected.Inc()
	}
	p.streams++
	p.cluster = cluster
}

// StreamClosed undoes StreamOpened.
func (t *Tracker) StreamClosed(node string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.proxies[node]
	if !ok || p.streams == 0 {
		return
	}
	p.streams--
	if p.streams == 0 && t.metrics != nil {
		t.metrics.Connected.Dec()
	}
}

// Status lists every known proxy, sorted by node id.
func (t *Tracker) Status() []ProxyStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ProxyStatus, 0, len(t.proxies))
	for _, node := range slices.Sorted(maps.Keys(t.proxies)) {
		p := t.proxies[node]
		ps := ProxyStatus{Node: node, Cluster: p.cluster, Connected: p.streams > 0, Streams: p.streams, Types: map[string]TypeStatus{}}
		for typ, s := range p.types {
			ps.Types[shortType(typ)] = s.status()
		}
		out = append(out, ps)
	}
	return out
}

func (s *typeState) status() TypeStatus {
	ts := TypeStatus{Current: s.current, Sent: s.sent, Acked: s.acked, LastAck: s.lastAck, Error: s.err}
	switch {
	case s.nackedVersion != "" && s.nackedVersion == s.current:
		ts.State = Nacked
	case s.sent == "":
		ts.State = NotSent
	case s.acked == s.current:
		ts.State = Synced
	default:
		ts.State = Stale
	}
	return ts
}

func truncateMsg(s string) string {
	const maxLen = 4096
	if len(s) > maxLen {
		return s[:maxLen] + "…"
	}
	return s
}

// Metrics returns the tracker's metrics (nil when created without).
func (t *Tracker) Metrics() *Metrics { return t.metrics }
