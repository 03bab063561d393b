//! The standard gRPC health service (`grpc.health.v1.Health`) on the Check port: `Check`
//! answers SERVING while the store commits, NOT_SERVING otherwise — the same question as the
//! admin API's `/readyz`, asked live on every call (the keys are loaded before either port
//! listens: a gate that could not load them does not start). `Watch` is not implemented
//! (UNIMPLEMENTED tells a client not to retry it); Kubernetes' gRPC probes and Envoy's health
//! checks use `Check`.

use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use tonic::{Request, Response, Status, server::NamedService};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
    health_server::Health,
};

use crate::{gate::Gate, grpc::AuthService};

/// The services `Check` knows: the server as a whole (`""`) and the Envoy authorization
/// service. Any other name is NOT_FOUND, as the protocol asks.
pub const SERVICES: [&str; 2] = ["", <AuthorizationServer<AuthService> as NamedService>::NAME];

/// `grpc.health.v1.Health` over the gate's readiness.
#[derive(Debug, Clone)]
pub struct HealthService {
    gate: Arc<Gate>,
}

impl HealthService {
    pub fn new(gate: Arc<Gate>) -> Self {
        Self { gate }
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        if !SERVICES.contains(&service.as_str()) {
            return Err(Status::not_found(format!("no service {service:?} here")));
        }
        let status = match self.gate.ready().await {
            Ok(()) => ServingStatus::Serving,
            Err(e) => {
                tracing::warn!(error = %e, "gRPC health: not serving (the store does not commit)");
                ServingStatus::NotServing
            }
        };
        Ok(Response::new(HealthCheckResponse {
            status: status.into(),
        }))
    }

    type WatchStream = futures::stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("Watch is not served: use Check"))
    }
}
