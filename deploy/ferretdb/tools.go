//go:build tools

// Package tools pins FerretDB so that `go build` fetches it from the Go module proxy.
package tools

import _ "github.com/FerretDB/FerretDB/cmd/ferretdb"
