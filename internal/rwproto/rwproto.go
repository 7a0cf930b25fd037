// Package rwproto holds what every part of Sluice that speaks Prometheus
// remote write over HTTP agrees on: the two protobuf messages, how a
// Content-Type names them, and the headers a 2.0 receiver answers with.
package rwproto

import (
	"fmt"
	"mime"
)

// The protobuf messages of remote write 1.0 and 2.0, as the proto parameter
// of the Content-Type names them.
const (
	MessageV1 = "prometheus.WriteRequest"
	MessageV2 = "io.prometheus.write.v2.Request"
)

// Headers a 2.0 receiver answers with: what it wrote of the request.
const (
	HeaderSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	HeaderHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	HeaderExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"
)

// Message reads the message a request's Content-Type names. No Content-Type,
// or one without a proto parameter, means 1.0, as the 2.0 specification says.
func Message(contentType string) (string, error) {
	if contentType == "" {
		return MessageV1, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-protobuf" {
		return "", fmt.Errorf("Content-Type %q is not application/x-protobuf", contentType)
	}
	switch p := params["proto"]; p {
	case "", MessageV1:
		return MessageV1, nil
	case MessageV2:
		return MessageV2, nil
	default:
		return "", fmt.Errorf("unknown remote write message %q (this receiver takes %s and %s)", p, MessageV1, MessageV2)
	}
}
