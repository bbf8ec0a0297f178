package controlplane

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/meshguard/meshguard/controlplane/rollout"
	"github.com/meshguard/meshguard/controlplane/translate"
	"github.com/meshguard/meshguard/internal/admincmd"
)

// RolloutReport is served at /v1/rollouts.
type RolloutReport struct {
	Rollouts []rollout.Rollout `json:"rollouts"`
}

// RolloutCommand is the body of POST /v1/rollouts/{promote,rollback,pause,resume}.
type RolloutCommand struct {
	Route string `json:"route"`
	// Actor names who asks, for the audit trail (the CLI sends $USER).
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// rolloutAPI serves the rollouts and the commands that move them.
// Commands change what every proxy enforces, so they pass the admin gate
// (internal/admincmd): the admin token, or a loopback listener, and a JSON
// body.
func (s *Server) rolloutAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/rollouts", func(w http.ResponseWriter, r *http.Request) {
		if route := r.URL.Query().Get("route"); route != "" {
			ro, err := s.Rollouts.Get(route)
			if err != nil {
				writeError(w, http.StatusNotFound, err)
				return
			}
			writeJSON(w, http.StatusOK, RolloutReport{Rollouts: []rollout.Rollout{ro}})
			return
		}
		writeJSON(w, http.StatusOK, RolloutReport{Rollouts: s.Rollouts.Status()})
	})
	mux.HandleFunc("POST /v1/rollouts/{verb}", func(w http.ResponseWriter, r *http.Request) {
		var cmd RolloutCommand
		if !s.adminGate().Decode(w, r, &cmd) {
			return
		}
		if cmd.Route == "" {
			writeError(w, http.StatusBadRequest, errors.New("body: route is required"))
			return
		}
		ro, err := s.Rollouts.Command(r.PathValue("verb"), cmd.Route, admincmd.Actor(r, cmd.Actor), admincmd.Printable(cmd.Reason, 1024))
		switch {
		case errors.Is(err, rollout.ErrNoRollout):
			writeError(w, http.StatusNotFound, err)
		case errors.Is(err, rollout.ErrNotLeader):
			writeError(w, http.StatusServiceUnavailable, err)
		case errors.Is(err, rollout.ErrConflict):
			writeError(w, http.StatusConflict, err)
		case err != nil:
			writeError(w, http.StatusBadRequest, err)
		default:
			writeJSON(w, http.StatusOK, ro)
		}
	})
}

func (s *Server) adminGate() *admincmd.Gate {
	return &admincmd.Gate{Token: s.cfg.AdminToken, Listener: s.adminLis,
		Hint: "start the control plane with --admin-token-file (meshguard rollout --token-file)"}
}

func writeJSON(w http.ResponseWriter, code int, v any) { admincmd.WriteJSON(w, code, v) }

func writeError(w http.ResponseWriter, code int, err error) { admincmd.WriteError(w, code, err) }

// RoutesReport is served at /v1/routes/{service}: the service's routes as
// its sidecars get them now, rollouts at their step in force. A proxyless
// workload that asks the authorizer itself (gRPC-Go has no ext_authz) reads
// its context extensions here.
type RoutesReport struct {
	Service string                   `json:"service"`
	Routes  []translate.RouteContext `json:"routes"`
}

func (s *Server) routesAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/routes/{service}", func(w http.ResponseWriter, r *http.Request) {
		m := s.Builder.Mesh()
		if m == nil {
			writeError(w, http.StatusServiceUnavailable, errors.New("no mesh loaded"))
			return
		}
		svc, ok := m.Service(r.PathValue("service"))
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Errorf("no service %q", r.PathValue("service")))
			return
		}
		writeJSON(w, http.StatusOK, RoutesReport{Service: svc.Name, Routes: translate.ServiceRoutes(svc)})
	})
}
