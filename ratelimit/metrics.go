package ratelimit

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the service's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	Decisions   *prometheus.CounterVec
	RedisErrors *prometheus.CounterVec
	Invalid     prometheus.Counter
	Reloads     *prometheus.CounterVec
	Pipelines   prometheus.Histogram
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_ratelimit_decisions_total",
			Help: "Limited descriptors decided, by domain, limit (its place in the configuration), shadow mode and result (ok or over_limit).",
		}, []string{"domain", "limit", "shadow", "result"}),
		RedisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_ratelimit_redis_errors_total",
			Help: "Requests whose counters Redis could not update, by the failure mode applied (open: allowed, closed: over limit).",
		}, []string{"failure_mode"}),
		Invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshguard_ratelimit_invalid_requests_total",
			Help: "Requests refused as invalid (no domain, no descriptors, oversized).",
		}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_ratelimit_config_reloads_total",
			Help: "Configuration loads, by result (ok or error: the last good configuration stays).",
		}, []string{"result"}),
	}
	m.Pipelines = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "meshguard_ratelimit_pipeline_requests",
		Help:    "Requests carried by each Redis pipeline: concurrent requests share one round trip.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	})
	reg.MustRegister(m.Decisions, m.RedisErrors, m.Invalid, m.Reloads, m.Pipelines)
	return m
}

// limitCounters are one limit's decision counters: [over][0], ok or over_limit.
type limitCounters struct {
	metrics  *Metrics
	ok, over prometheus.Counter
}

// decided counts a limited descriptor's decision. A configured limit's
// counters are resolved once; an override's (a new Limit per request)
// each time, with the domain label bounded to configured domains.
func (m *Metrics) decided(cfg *Config, domain string, l *Limit, over bool) {
	if m == nil {
		return
	}
	lc := l.counters.Load()
	if lc == nil || lc.metrics != m {
		if !cfg.Has(domain) {
			domain = "_unknown"
		}
		shadow := "false"
		if l.ShadowMode || l.QuotaMode {
			shadow = "true"
		}
		lc = &limitCounters{metrics: m, ok: m.Decisions.WithLabelValues(domain, l.Path, shadow, "ok"),
			over: m.Decisions.WithLabelValues(domain, l.Path, shadow, "over_limit")}
		l.counters.Store(lc)
	}
	if over {
		lc.over.Inc()
	} else {
		lc.ok.Inc()
	}
}

func (m *Metrics) redisError(mode string) {
	if m != nil {
		m.RedisErrors.WithLabelValues(mode).Inc()
	}
}

func (m *Metrics) invalid() {
	if m != nil {
		m.Invalid.Inc()
	}
}

func (m *Metrics) reloaded(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.Reloads.WithLabelValues("ok").Inc()
	} else {
		m.Reloads.WithLabelValues("error").Inc()
	}
}
