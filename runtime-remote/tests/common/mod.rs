//! What the remote tests share.

use std::sync::Arc;

use secrecy::SecretString;
use yoi_runtime_api::DynRuntime;

/// Serves `runtime`, requiring `token`, on a free port of 127.0.0.1 for the
/// rest of the test; returns its base URL.
pub(crate) async fn serve(runtime: Arc<DynRuntime>, token: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(yoi_runtime_server::serve(
        listener,
        runtime,
        SecretString::from(token.to_owned()),
        std::future::pending(),
    ));
    base
}
