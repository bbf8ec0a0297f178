package demoapp

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/controlplane/translate"
	"github.com/meshguard/meshguard/internal/httpjson"
	"github.com/meshguard/meshguard/internal/periodic"
)

// Routes are a service's routes with the context extensions a sidecar
// would send for each: from the mesh file at first, then, with Follow,
// from the control plane, so that a rollout's step in force applies to a
// proxyless workload too. It is safe for concurrent use.
type Routes struct {
	list atomic.Pointer[[]translate.RouteContext]
}

// StaticRoutes are svc's routes at their declared rollout stages.
func StaticRoutes(svc *model.Service) *Routes {
	r := &Routes{}
	list := translate.ServiceRoutes(svc)
	r.list.Store(&list)
	return r
}

// Extensions are the context extensions of the first route matching
// method and path; nil when none matches (Envoy would answer 404, and the
// authorizer denies a request without meshguard.service).
func (r *Routes) Extensions(method, path string) map[string]string {
	for _, rc := range *r.list.Load() {
		m := rc.Match
		if len(m.Methods) > 0 && !slices.Contains(m.Methods, method) {
			continue
		}
		if (m.Prefix != "" && strings.HasPrefix(path, m.Prefix)) || (m.Path != "" && m.Path == path) {
			return rc.Extensions
		}
	}
	return nil
}

// Follow reads the control plane's /v1/routes/<service> from admin every
// interval until ctx ends. A failed read keeps the routes last read.
func (r *Routes) Follow(ctx context.Context, admin, service string, every time.Duration, log *slog.Logger) {
	url := "http://" + admin + "/v1/routes/" + service
	client := &http.Client{Timeout: 2 * time.Second}
	read := func(ctx context.Context) {
		list, err := fetchRoutes(ctx, client, url)
		if err != nil {
			log.Warn("routes not refreshed from the control plane; keeping the last ones", "err", err)
			return
		}
		r.list.Store(&list)
	}
	read(ctx)
	periodic.Every(ctx, every, read)
}

func fetchRoutes(ctx context.Context, client *http.Client, url string) ([]translate.RouteContext, error) {
	var rep struct {
		Routes []translate.RouteContext `json:"routes"`
	}
	if err := httpjson.Get(ctx, client, url, 4<<20, &rep); err != nil {
		return nil, err
	}
	return rep.Routes, nil
}
