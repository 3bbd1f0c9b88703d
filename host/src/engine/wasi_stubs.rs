//! The parts of WASI 0.2 that could reach outside the sandbox, linked to
//! stubs that refuse, whatever the `WasiCtx` grants: no preopened
//! directories (so no file descriptor can ever exist), no TCP or UDP socket,
//! no name lookup, no environment or arguments. The Rust standard library
//! imports all of these; with the stubs, no change to the context's settings
//! can reopen them. What remains of WASI (clocks, random numbers, captured
//! stdout and stderr, an empty stdin, streams and polls) reaches nothing.

use super::sandbox::HostState;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::bindings::filesystem::preopens;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::{ip_name_lookup, tcp_create_socket, udp_create_socket};

/// The WASI 0.2 version the linker serves (guests built for any earlier
/// 0.2 release link to it).
const WASI_VERSION: &str = "0.2.12";

fn interface(name: &str) -> String {
    format!("wasi:{name}@{WASI_VERSION}")
}

/// Shadow the reaching parts of WASI in `linker` (after the full WASI has
/// been added) with refusing stubs.
pub fn shadow(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker
        .instance(&interface("filesystem/preopens"))?
        .func_wrap("get-directories", |_store, (): ()| Ok((Vec::<(Resource<preopens::Descriptor>, String)>::new(),)))?;
    linker.instance(&interface("sockets/tcp-create-socket"))?.func_wrap(
        "create-tcp-socket",
        |_store, (_family,): (IpAddressFamily,)| {
            Ok((Err::<Resource<tcp_create_socket::TcpSocket>, _>(ErrorCode::AccessDenied),))
        },
    )?;
    linker.instance(&interface("sockets/udp-create-socket"))?.func_wrap(
        "create-udp-socket",
        |_store, (_family,): (IpAddressFamily,)| {
            Ok((Err::<Resource<udp_create_socket::UdpSocket>, _>(ErrorCode::AccessDenied),))
        },
    )?;
    linker.instance(&interface("sockets/ip-name-lookup"))?.func_wrap(
        "resolve-addresses",
        |_store, (_network, _name): (Resource<ip_name_lookup::Network>, String)| {
            Ok((Err::<Resource<ip_name_lookup::ResolveAddressStream>, _>(ErrorCode::AccessDenied),))
        },
    )?;
    let mut environment = linker.instance(&interface("cli/environment"))?;
    environment.func_wrap("get-environment", |_store, (): ()| Ok((Vec::<(String, String)>::new(),)))?;
    environment.func_wrap("get-arguments", |_store, (): ()| Ok((Vec::<String>::new(),)))?;
    environment.func_wrap("initial-cwd", |_store, (): ()| Ok((None::<String>,)))?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::engine::{Engine, EngineSettings};
    use std::sync::atomic::{AtomicBool, Ordering};
    use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

    /// Set while the test below runs: contexts grant everything they can.
    static GRANT_EVERYTHING: AtomicBool = AtomicBool::new(false);

    /// A context as open as a careless configuration change could make it.
    pub(crate) fn grant_everything_when_asked(wasi: &mut WasiCtxBuilder) {
        if GRANT_EVERYTHING.load(Ordering::Relaxed) {
            wasi.inherit_env()
                .args(&["guest", "--secret"])
                .allow_tcp(true)
                .allow_udp(true)
                .allow_ip_name_lookup(true)
                .socket_addr_check(|_, _| Box::pin(async { true }));
            let _ = wasi.preopened_dir("/", "/", FsPerms::ReadWrite);
            let _ = wasi.preopened_dir(".", ".", FsPerms::ReadWrite);
        }
    }

    #[tokio::test]
    async fn the_stubs_refuse_even_when_the_context_grants_everything() {
        GRANT_EVERYTHING.store(true, Ordering::Relaxed);
        let settings = EngineSettings { cache_dir: None, max_instances: 4, ..EngineSettings::default() };
        let engine = Engine::new(settings).expect("engine");
        let module = engine.load_file(monasca_test_programs::HOSTILE).expect("the hostile guest loads");
        let mut instance =
            module.instantiate("open-context", vec![("mode".into(), "probe".into())]).await.expect("starts");
        let message = crate::engine::types::Message {
            topic: "in".into(),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            key: None,
            value: bytes::Bytes::from_static(b"x"),
            headers: Vec::new(),
            tombstone: false,
        };
        let effects = instance.process(&[message]).await.expect("probing does not trap");
        GRANT_EVERYTHING.store(false, Ordering::Relaxed);
        let reports: Vec<String> = effects
            .iter()
            .filter_map(|e| match e {
                crate::engine::types::Effect::Produce(r) => Some(String::from_utf8_lossy(&r.value).into_owned()),
                _ => None,
            })
            .collect();
        assert_eq!(reports.len(), 10, "{reports:#?}");
        for report in &reports {
            assert!(report.contains("denied") && !report.contains("GRANTED"), "sandbox leak: {report}");
        }
    }
}
