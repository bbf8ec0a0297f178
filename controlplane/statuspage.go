package controlplane

import (
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/meshguard/meshguard/controlplane/rollout"
	"github.com/meshguard/meshguard/internal/httpjson"
	"github.com/meshguard/meshguard/internal/xds"
)

// The status page: GET / on the admin listener, one self-contained HTML
// page (no scripts, no external assets; it reloads itself every 10 s) for
// the on-call engineer — the mesh, every proxy's sync state per type, the
// rollouts, and the latest denials from every authorizer.

//go:embed statuspage.html
var statusPageHTML string

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"lower": strings.ToLower,
	"stateClass": func(state string) string {
		return strings.ReplaceAll(strings.ToLower(state), " ", "-")
	},
}).Parse(statusPageHTML))

// statusTypes are the xDS types in the page's column order: the key of
// ProxyStatus.Types, and the column's name.
var statusTypes = []struct{ Key, Short string }{
	{"Listener", "LDS"}, {"RouteConfiguration", "RDS"}, {"Cluster", "CDS"},
	{"ClusterLoadAssignment", "EDS"}, {"Secret", "SDS"},
}

type statusData struct {
	Mesh, LastError     string
	Generated           time.Time
	Types               []string
	Proxies             []proxyRow
	Connected, Problems int
	Rollouts            []rollout.Rollout
	Denies              []denyRow
	AuthzErrors         []string
	AuthzAsked          int
}

type proxyRow struct {
	Node, Cluster string
	Connected     bool
	Cells         []xds.TypeStatus
}

// denyRow is one denial an authorizer reports (its /v1/denies).
type denyRow struct {
	Authorizer string    `json:"-"`
	Time       time.Time `json:"time"`
	Route      string    `json:"route"`
	PolicySet  string    `json:"policy_set"`
	Status     int       `json:"status"`
	Reason     string    `json:"reason"`
	Principal  string    `json:"principal"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
}

// maxPageDenies bounds the denials the page lists, across authorizers.
const maxPageDenies = 50

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	d := statusData{Generated: time.Now()}
	if m := s.Builder.Mesh(); m != nil {
		d.Mesh = m.Metadata.Name
	}
	if err := s.LastError(); err != nil {
		d.LastError = err.Error()
	}
	for _, t := range statusTypes {
		d.Types = append(d.Types, t.Short)
	}
	for _, p := range s.Tracker.Status() {
		row := proxyRow{Node: p.Node, Cluster: p.Cluster, Connected: p.Connected}
		bad := false
		for _, t := range statusTypes {
			st := p.Types[t.Key]
			if st.State == "" {
				st.State = xds.NotSent
			}
			bad = bad || st.State == xds.Nacked
			row.Cells = append(row.Cells, st)
		}
		if p.Connected {
			d.Connected++
		}
		if bad {
			d.Problems++
		}
		d.Proxies = append(d.Proxies, row)
	}
	d.Rollouts = s.Rollouts.Status()
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	d.Denies, d.AuthzAsked, d.AuthzErrors = s.recentDenies(ctx)

	h := w.Header()
	h.Set("content-type", "text/html; charset=utf-8")
	// Nothing but the page itself: no scripts, no frames, no fetches.
	h.Set("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("x-content-type-options", "nosniff")
	h.Set("referrer-policy", "no-referrer")
	h.Set("cache-control", "no-store")
	if err := statusPage.Execute(w, d); err != nil {
		s.log.Error("status page", "err", err)
	}
}

// recentDenies asks every authorizer the rollout gates read for its latest
// denials, newest first across them; an authorizer that does not answer is
// named, not fatal.
func (s *Server) recentDenies(ctx context.Context) ([]denyRow, int, []string) {
	sources := s.Rollouts.Authorizers(ctx)
	client := &http.Client{Timeout: 2 * time.Second}
	var denies []denyRow
	var errs []string
	for _, r := range httpjson.FromEach(ctx, sources, func(ctx context.Context, src string) ([]denyRow, error) {
		return fetchDenies(ctx, client, src)
	}) {
		if r.Err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", r.Source, r.Err))
		}
		denies = append(denies, r.Value...)
	}
	slices.SortFunc(denies, func(a, b denyRow) int { return b.Time.Compare(a.Time) })
	return denies[:min(len(denies), maxPageDenies)], len(sources), errs
}

func fetchDenies(ctx context.Context, client *http.Client, src string) ([]denyRow, error) {
	var body struct {
		Denies []denyRow `json:"denies"`
	}
	if err := httpjson.Get(ctx, client, strings.TrimSuffix(src, "/")+"/v1/denies", 1<<20, &body); err != nil {
		return nil, err
	}
	for i := range body.Denies {
		body.Denies[i].Authorizer = src
	}
	return body.Denies, nil
}
