//go:build tools

// Package tools pins the upstream module this wrapper builds; build.sh runs go build on it.
package tools

import (
	_ "github.com/kedacore/keda/v2/cmd/operator"
	_ "github.com/kedacore/keda/v2/cmd/adapter"
	_ "github.com/kedacore/keda/v2/cmd/webhooks"
)
