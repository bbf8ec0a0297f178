package controlplane

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// registerIdentityMetrics exports when the served identities expire (SVIDs
// are re-issued at half their lifetime, so the soonest expiry coming close
// means rotation stopped: the alert MeshguardSVIDExpiringSoon) and whether
// keys go to unauthenticated peers.
func (s *Server) registerIdentityMetrics() {
	at := func(pick func(svid, ca time.Time) time.Time) func() float64 {
		return func() float64 {
			t := pick(s.Builder.secrets.expiries())
			if t.IsZero() {
				return 0
			}
			return float64(t.Unix())
		}
	}
	s.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshguard_controlplane_svid_expiry_timestamp_seconds",
			Help: "When the soonest-expiring SVID the control plane serves expires (Unix time; 0: none served)."},
			at(func(svid, _ time.Time) time.Time { return svid })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshguard_controlplane_ca_expiry_timestamp_seconds",
			Help: "When the dev CA's certificate expires (Unix time; 0: no dev CA)."},
			at(func(_, ca time.Time) time.Time { return ca })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshguard_controlplane_insecure_secrets",
			Help: "1 when workload private keys are served to unauthenticated loopback peers (--insecure-loopback-sds)."},
			func() float64 {
				if s.cfg.InsecureLoopbackSecrets {
					return 1
				}
				return 0
			}),
	)
}
