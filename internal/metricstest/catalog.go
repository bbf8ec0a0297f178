// Package metricstest lists the Prometheus series meshguard really
// exports — the authorizer's, the control plane's, the rate-limit
// service's — from the code that registers them, so that dashboards and
// alert rules are tested against what exists, not against names typed
// twice.
package metricstest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/meshguard/meshguard/controlplane"
	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/internal/xds"
	"github.com/meshguard/meshguard/ratelimit"
)

// Metric is one exported metric family.
type Metric struct {
	Name      string
	Labels    []string
	Histogram bool
}

// capture is a Registerer that keeps what is registered.
type capture struct{ cs []prometheus.Collector }

func (c *capture) Register(col prometheus.Collector) error { c.cs = append(c.cs, col); return nil }
func (c *capture) MustRegister(cs ...prometheus.Collector) { c.cs = append(c.cs, cs...) }
func (c *capture) Unregister(prometheus.Collector) bool    { return false }

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
)

// Catalog returns every meshguard_* metric, by name.
func Catalog(t testing.TB) map[string]Metric {
	t.Helper()
	c := &capture{}
	extauthz.NewMetrics(c)
	ratelimit.NewMetrics(c)
	xds.NewMetrics(c)
	out := map[string]Metric{}
	for _, col := range c.cs {
		ch := make(chan *prometheus.Desc, 16)
		go func() { col.Describe(ch); close(ch) }()
		_, isHist := col.(prometheus.Histogram)
		if _, ok := col.(*prometheus.HistogramVec); ok {
			isHist = true
		}
		for d := range ch {
			m := descName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read %s", d)
			}
			var labels []string
			if l := descLabels.FindStringSubmatch(d.String()); l != nil && l[1] != "" {
				labels = strings.Split(l[1], ",")
			}
			out[m[1]] = Metric{Name: m[1], Labels: labels, Histogram: isHist}
		}
	}
	// The control plane's own gauges, from a running one's registry.
	for _, f := range controlPlaneFamilies(t) {
		if strings.HasPrefix(f.GetName(), "meshguard_") {
			if _, ok := out[f.GetName()]; !ok {
				out[f.GetName()] = Metric{Name: f.GetName(), Histogram: f.GetType() == dto.MetricType_HISTOGRAM}
			}
		}
	}
	return out
}

func controlPlaneFamilies(t testing.TB) []*dto.MetricFamily {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	mesh := filepath.Join(filepath.Dir(file), "..", "..", "controlplane", "testdata", "sidecars", "mesh.yaml")
	dir := t.TempDir()
	s, err := controlplane.New(controlplane.Config{MeshPath: mesh, Listen: "127.0.0.1:0",
		CADir: filepath.Join(dir, "ca"), RolloutDir: filepath.Join(dir, "rollouts")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	fs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

var (
	metricRef = regexp.MustCompile(`\bmeshguard_[a-z0-9_]+`)
	byLabels  = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	matchers  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!=|!~|=)\s*"`)
)

// CheckExpr reports what a PromQL expression refers to that meshguard does
// not export: an unknown metric, a histogram series of a non-histogram, or
// a label (grouped by or matched) none of its metrics has. "le" and the
// scrape labels (instance, job, namespace, pod) are always allowed.
func CheckExpr(cat map[string]Metric, expr string) []string {
	var problems []string
	labels := map[string]bool{"le": true, "instance": true, "job": true, "namespace": true, "pod": true}
	refs := metricRef.FindAllString(expr, -1)
	if len(refs) == 0 {
		problems = append(problems, "no meshguard metric")
	}
	for _, name := range refs {
		m, ok := cat[name]
		if !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, cut := strings.CutSuffix(name, suffix); cut {
					if hm, ok2 := cat[base]; ok2 && hm.Histogram {
						m, ok = hm, true
					}
				}
			}
		}
		if !ok {
			problems = append(problems, "unknown metric "+name)
			continue
		}
		for _, l := range m.Labels {
			labels[l] = true
		}
	}
	var used []string
	for _, g := range byLabels.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			used = append(used, strings.TrimSpace(l))
		}
	}
	for _, g := range matchers.FindAllStringSubmatch(expr, -1) {
		used = append(used, g[1])
	}
	for _, l := range used {
		if l != "" && !labels[l] {
			problems = append(problems, "label "+l+" is not on "+strings.Join(refs, ", "))
		}
	}
	return problems
}
