//go:build tools

// Package tools pins the upstream module this wrapper builds; build.sh runs go build on it.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
