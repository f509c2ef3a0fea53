// Package integration holds the tests of the DynamoDB store through the
// whole stack (engine, worker processes, HTTP server, Go client): faults
// injected under the engine, records of several megabytes through the
// server, and records written through one store and read through the other.
// They need DynamoDB Local (see store/dynamo/dynamotest) and skip without
// it. They live apart from store/dynamo because the worker processes need
// this test binary's TestMain, and because store/dynamo must not depend on
// the engine.
package integration
