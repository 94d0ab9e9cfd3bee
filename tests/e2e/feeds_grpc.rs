//! The gRPC side of the feeds that standard tools rely on, against an in-process collector:
//! a `Watch` consumer that stops reading is ended with RESOURCE_EXHAUSTED after the events
//! already queued, and the cursor it is told to resume from gets it the rest without a gap;
//! `grpc.health.v1` answers SERVING for the server and each service, and reflection lists the
//! services — both without a client certificate, as load balancers and grpcurl connect.

use std::time::Duration;

use firstline_proto::v1::feed_client::FeedClient;
use firstline_proto::v1::{EventsSinceRequest, TicketAction, UpdateTicketRequest, WatchRequest};
use firstline_tests::admin;
use firstline_tests::inproc::InProcess;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Comments this long make a few events fill a stream's flow-control window.
const BIG: usize = 4000;

/// A channel with the operator's certificate; `small_window` keeps the client's HTTP/2
/// receive window at the protocol's minimum default, so a consumer that stops reading is felt
/// by the collector after a few events.
async fn operator_channel(c: &InProcess, small_window: bool, with_cert: bool) -> Channel {
    let read = |name: &str| std::fs::read_to_string(c.data_dir.join(name)).expect(name);
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.crt")))
        .domain_name("localhost");
    if with_cert {
        tls = tls.identity(Identity::from_pem(
            read("operator.crt"),
            read("operator.key"),
        ));
    }
    let mut endpoint = Endpoint::from_shared(c.url())
        .expect("url")
        .tls_config(tls)
        .expect("tls");
    if small_window {
        endpoint = endpoint
            .initial_stream_window_size(65_535)
            .initial_connection_window_size(65_535);
    }
    endpoint.connect().await.expect("connect")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_that_stops_reading_is_told_where_to_resume_and_misses_nothing() {
    let c = InProcess::start_configured(|config| {
        config.watch_stall_timeout = Duration::from_secs(1);
    })
    .await;
    c.report_disk("pc-1", 93).await;
    let mut admin = admin::connect(&c.url(), &c.data_dir).await;
    let ticket = admin::list_tickets(&mut admin, "")
        .await
        .into_iter()
        .next()
        .expect("a ticket");
    // Far more than the collector queues (256) plus what fits in the window.
    let comments = 400;
    let text = "x".repeat(BIG);
    for _ in 0..comments {
        admin
            .update_ticket(UpdateTicketRequest {
                id: ticket.id,
                action: TicketAction::Comment as i32,
                text: text.clone(),
            })
            .await
            .expect("comment");
    }
    let mut log = Vec::new();
    let mut cursor = 0;
    loop {
        let page = admin
            .events_since(EventsSinceRequest {
                cursor,
                limit: 1000,
                ..Default::default()
            })
            .await
            .expect("events")
            .into_inner();
        if page.events.is_empty() {
            break;
        }
        cursor = page.next_cursor;
        log.extend(page.events.iter().map(|e| e.cursor));
    }
    assert!(log.len() > comments, "{} events in the log", log.len());

    // Open the stream and read nothing until the collector gives up on us.
    let mut feed = FeedClient::new(operator_channel(&c, true, true).await);
    let mut stream = feed
        .watch(WatchRequest::default())
        .await
        .expect("watch")
        .into_inner();
    // The collector waits `watch_stall_timeout` (1 s) on a full queue; this consumer stalls
    // for several times that before it reads what was sent.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut received = Vec::new();
    let status = loop {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the stalled stream was not ended (read {} of {})",
                    received.len(),
                    log.len()
                )
            });
        match next {
            Ok(Some(e)) => received.push(e.cursor),
            Ok(None) => panic!("stream ended without a status after {}", received.len()),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let resume: i64 = status
        .metadata()
        .get("firstline-resume-cursor")
        .expect("resume trailer")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a cursor");
    assert!(!received.is_empty() && received.len() < log.len());
    assert_eq!(received, log[..received.len()], "in log order, no gap");
    assert_eq!(
        resume,
        *received.last().expect("some"),
        "resume from the last event delivered"
    );
    assert!(status.message().contains(&format!("cursor {resume}")));

    // Resuming there gets exactly the rest.
    let mut stream = feed
        .watch(WatchRequest {
            cursor: resume,
            ..Default::default()
        })
        .await
        .expect("watch again")
        .into_inner();
    let mut rest = Vec::new();
    while rest.len() < log.len() - received.len() {
        let e = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("the rest arrives")
            .expect("no error")
            .expect("stream open");
        rest.push(e.cursor);
    }
    assert_eq!(rest, log[received.len()..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_reflection_answer_without_a_client_certificate() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let c = InProcess::start().await;
    let anonymous = operator_channel(&c, false, false).await;
    let mut health = HealthClient::new(anonymous.clone());
    for service in [
        "",
        "firstline.v1.Agent",
        "firstline.v1.Admin",
        "firstline.v1.Feed",
        "firstline.v1.Enrollment",
    ] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|s| panic!("{service:?}: {s:?}"))
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let mut reflection = ServerReflectionClient::new(anonymous);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream_once(request))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("answer")
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in [
        "firstline.v1.Agent",
        "firstline.v1.Admin",
        "firstline.v1.Feed",
        "firstline.v1.Enrollment",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} in {names:?}");
    }
}

/// A request stream of one message.
fn tokio_stream_once<T: Send + 'static>(
    item: T,
) -> impl tonic::codegen::tokio_stream::Stream<Item = T> + Send + 'static {
    tonic::codegen::tokio_stream::iter(std::iter::once(item))
}
