// Package schema holds the machine-readable descriptions of dynamerge: the
// OpenAPI document of the sync protocol (openapi.yaml) and the on-store
// layout (README.md). It has no Go API; its tests keep openapi.yaml in step
// with the routes and error codes of the server package.
package schema
