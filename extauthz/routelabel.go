package extauthz

import "sync"

// maxRouteLabels bounds the route label's values: route ids arrive with
// requests (from the proxy's configuration), so a misconfigured or hostile
// proxy could otherwise make every request a new time series.
const maxRouteLabels = 1000

// Route label values outside a route id.
const (
	routeLabelNone  = "_none"  // the request named no valid route
	routeLabelOther = "_other" // past maxRouteLabels distinct routes
)

// routeLabels hands out route label values: each route id as itself, up
// to maxRouteLabels of them, then routeLabelOther.
type routeLabels struct {
	mu   sync.RWMutex
	seen map[string]struct{}
}

func (r *routeLabels) label(route string) string {
	if route == "" {
		return routeLabelNone
	}
	r.mu.RLock()
	_, ok := r.seen[route]
	r.mu.RUnlock()
	if ok {
		return route
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[route]; ok {
		return route
	}
	if len(r.seen) >= maxRouteLabels {
		return routeLabelOther
	}
	if r.seen == nil {
		r.seen = map[string]struct{}{}
	}
	r.seen[route] = struct{}{}
	return route
}
