package extauthz

import (
	"sync"
	"sync/atomic"
)

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
// to maxRouteLabels of them, then routeLabelOther. Every decision asks,
// so a route seen before is a lock-free read.
type routeLabels struct {
	seen sync.Map // route id → struct{}
	n    atomic.Int32
}

func (r *routeLabels) label(route string) string {
	if route == "" {
		return routeLabelNone
	}
	if _, ok := r.seen.Load(route); ok {
		return route
	}
	if r.n.Add(1) > maxRouteLabels {
		r.n.Add(-1)
		return routeLabelOther
	}
	if _, loaded := r.seen.LoadOrStore(route, struct{}{}); loaded {
		r.n.Add(-1) // another decision stored it first
	}
	return route
}
