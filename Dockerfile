# The image the Helm chart runs (charts/meshguard, image.repository): one
# static meshguard binary on a distroless base, as user 65532 (the chart's
# runAsUser), no shell. Build: make image (docker build -t meshguard:VERSION .)
FROM golang:1.27 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/meshguard/meshguard/internal/version.Version=${VERSION}" \
      -o /out/meshguard ./cmd/meshguard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/meshguard /usr/local/bin/meshguard
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/meshguard"]
