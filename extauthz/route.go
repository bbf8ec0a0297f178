package extauthz

import (
	"errors"
	"fmt"

	"github.com/meshguard/meshguard/extauthz/policy"
)

// Context extension keys set by the control plane on every protected route
// (ARCHITECTURE.md, "Contracts between the parts").
const (
	ExtRoute   = "meshguard.route"
	ExtService = "meshguard.service"
	ExtPolicy  = "meshguard.policy"
	ExtMode    = "meshguard.mode"
	ExtShadow  = "meshguard.shadow"
	ExtAction  = "meshguard.action"
)

// Modes.
const (
	ModeEnforce = "enforce"
	ModeShadow  = "shadow"
)

// Route is the per-route authorization setting carried by context extensions.
type Route struct {
	ID        string
	Service   string
	PolicySet string
	Mode      string
	ShadowSet string
	Action    string
}

// maxExtensionLen bounds each meshguard.* value. They come from the control
// plane, not clients, but they end up in logs and metric labels.
const maxExtensionLen = 256

// RouteFromExtensions reads the route setting. A missing service, an
// unknown mode or a malformed set name is an error, which denies.
func RouteFromExtensions(ext map[string]string) (Route, error) {
	r := Route{
		ID:        ext[ExtRoute],
		Service:   ext[ExtService],
		PolicySet: ext[ExtPolicy],
		Mode:      ext[ExtMode],
		ShadowSet: ext[ExtShadow],
		Action:    ext[ExtAction],
	}
	for _, v := range []string{r.ID, r.Service, r.PolicySet, r.Mode, r.ShadowSet, r.Action} {
		if len(v) > maxExtensionLen {
			return r, fmt.Errorf("context extension value over %d bytes", maxExtensionLen)
		}
	}
	if r.Service == "" {
		return r, errors.New("context extension " + ExtService + " is missing")
	}
	if r.PolicySet == "" {
		r.PolicySet = policy.DefaultSet
	}
	if !policy.ValidSetName(r.PolicySet) {
		return r, fmt.Errorf("%s %q is not a valid policy set name", ExtPolicy, r.PolicySet)
	}
	if r.ShadowSet != "" && !policy.ValidSetName(r.ShadowSet) {
		return r, fmt.Errorf("%s %q is not a valid policy set name", ExtShadow, r.ShadowSet)
	}
	switch r.Mode {
	case "":
		r.Mode = ModeEnforce
	case ModeEnforce, ModeShadow:
	default:
		return r, fmt.Errorf("%s %q: want enforce or shadow", ExtMode, r.Mode)
	}
	return r, nil
}
