"""What scripts/peers/ingest_peers.sh loads into the original monasca-log-api
2.11.0 and monasca-events-api 8.0.0 (gunicorn imports it as
`ingest_peers:application`, with scripts/peers on the Python path).

It replaces exactly two parts of the originals, everything else (their paste
pipelines, falcon apps, oslo middlewares, policies, serialisers) runs unchanged:

* keystonemiddleware's auth_token filter, by `auth_filter_factory`: a stub that
  knows a fixed set of tokens (a JSON file,
  `[{"token": .., "project_id": .., "roles": [..], "user_id": ..}]`, re-read
  when it changes). Like auth_token it first removes every identity header a
  client may have sent (X-Identity-Status, X-Roles, X-Project-Id, X-User-Id,
  X-Tenant-Id, X-Role, X-Service-*, ...); a known `X-Auth-Token` (or
  `X-Storage-Token`) then gets X-Identity-Status: Confirmed, X-Roles
  (comma-joined), X-Project-Id, X-User-Id and auth_token's deprecated copies
  X-Role and X-Tenant-Id; a missing or unknown token gets auth_token's 401
  (JSON body, `WWW-Authenticate: Keystone uri=""`). A 401 answered by the
  app behind it gets the same WWW-Authenticate header appended, as
  auth_token's process_response does.

* monasca_common.kafka.producer.KafkaProducer (the kafka-python-era client
  both originals hard-wire, which Apache Kafka 4 refuses), by
  `ConfluentSyncProducer`: same constructor and `publish(topic, messages,
  key=None)`. Key: `str(int(time.time() * 1000))`, computed once per publish
  call, when none is given; messages UTF-8 encoded as the original does; every
  message produced with that key, acks=1, then flushed. A delivery error, a
  message still unflushed after the timeout, or a produce() error is retried
  once (the legacy producer resets its metadata and retries once), then raised
  as a kafka_lib FailedPayloadsError whose str() is empty, like the legacy
  client's, so that the originals' own failure paths run (log-api: 503 with
  an empty body; events-api: one more try, then 400 `{"title": "Service
  unavailable", "description": ""}`).

Environment of the gunicorn process (set by ingest_peers.sh):
  INGEST_PEER_APP       log-api | events-api
  INGEST_PEER_PASTE     the paste ini to load (the original's, auth replaced)
  INGEST_PEER_CONF      the oslo.config file, the only one the app reads
  INGEST_PEERS_MESSAGE_TIMEOUT_MS  librdkafka message.timeout.ms (default 5000)
"""
import json
import logging
import os
import sys
import threading
import time

LOG = logging.getLogger('ingest_peers')

# ---------------------------------------------------------------------------
# keystonemiddleware auth_token stand-in

# keystonemiddleware.auth_token._request._AuthTokenRequest._all_auth_headers
_PREFIXES = ('', '-Service')
_TEMPLATES = ('X%s-Domain-Id', 'X%s-Domain-Name', 'X%s-Project-Id', 'X%s-Project-Name',
              'X%s-Project-Domain-Id', 'X%s-Project-Domain-Name', 'X%s-User-Id',
              'X%s-User-Name', 'X%s-User-Domain-Id', 'X%s-User-Domain-Name', 'X%s-Roles')
_AUTH_HEADERS = (['X-Service-Catalog', 'X-Identity-Status', 'X-Service-Identity-Status',
                  'X-Is-Admin-Project', 'X-Role', 'X-User', 'X-Tenant-Id', 'X-Tenant-Name',
                  'X-Tenant'] + [t % p for t in _TEMPLATES for p in _PREFIXES])


def _environ_key(header):
    return 'HTTP_' + header.upper().replace('-', '_')


_AUTH_ENVIRON_KEYS = tuple(_environ_key(h) for h in _AUTH_HEADERS)

_UNAUTHORIZED_BODY = json.dumps({'error': {
    'code': 401, 'title': 'Unauthorized',
    'message': 'The request you have made requires authentication.'}}).encode('utf-8')


class _Tokens(object):
    """The tokens file, re-read whenever its mtime or size changes."""

    def __init__(self, path):
        self._path = path
        self._stamp = None
        self._tokens = {}
        self._lock = threading.Lock()
        self.get('')  # fail at start-up on a missing or malformed file

    def get(self, token):
        with self._lock:
            st = os.stat(self._path)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                with open(self._path, encoding='utf-8') as f:
                    entries = json.load(f)
                tokens = {}
                for e in entries:
                    if not isinstance(e, dict) or not isinstance(e.get('token'), str):
                        raise ValueError('%s: each entry needs a "token" string: %r' % (self._path, e))
                    tokens[e['token']] = e
                self._tokens, self._stamp = tokens, stamp
            return self._tokens.get(token)


class StubAuthToken(object):
    def __init__(self, app, tokens_file, www_authenticate_uri=''):
        self._app = app
        self._tokens = _Tokens(tokens_file)
        self._www_authenticate = ('WWW-Authenticate', 'Keystone uri="%s"' % www_authenticate_uri)

    def __call__(self, environ, start_response):
        for key in _AUTH_ENVIRON_KEYS:
            environ.pop(key, None)
        token = environ.get('HTTP_X_AUTH_TOKEN', environ.get('HTTP_X_STORAGE_TOKEN'))
        entry = self._tokens.get(token) if token else None
        if entry is None:
            start_response('401 Unauthorized', [
                ('Content-Type', 'application/json'),
                ('Content-Length', str(len(_UNAUTHORIZED_BODY))),
                self._www_authenticate])
            return [] if environ.get('REQUEST_METHOD') == 'HEAD' else [_UNAUTHORIZED_BODY]
        roles = ','.join(entry.get('roles') or [])
        environ['HTTP_X_IDENTITY_STATUS'] = 'Confirmed'
        environ['HTTP_X_ROLES'] = roles
        environ['HTTP_X_ROLE'] = roles
        if entry.get('project_id') is not None:
            environ['HTTP_X_PROJECT_ID'] = str(entry['project_id'])
            environ['HTTP_X_TENANT_ID'] = str(entry['project_id'])
        if entry.get('user_id') is not None:
            environ['HTTP_X_USER_ID'] = str(entry['user_id'])

        def _start_response(status, headers, exc_info=None):
            if status.startswith('401'):
                headers = list(headers) + [self._www_authenticate]
            return start_response(status, headers, exc_info)

        return self._app(environ, _start_response)


def auth_filter_factory(global_conf, **local_conf):
    """paste.filter_factory; options: tokens_file, www_authenticate_uri."""
    tokens_file = local_conf['tokens_file']
    uri = local_conf.get('www_authenticate_uri', '')

    def _filter(app):
        return StubAuthToken(app, tokens_file, uri)
    return _filter


# ---------------------------------------------------------------------------
# Synchronous confluent-kafka producer in place of the legacy KafkaProducer

_PRODUCERS = {}
_PRODUCERS_LOCK = threading.Lock()


def _message_timeout_ms():
    return int(os.environ.get('INGEST_PEERS_MESSAGE_TIMEOUT_MS', '5000'))


def _confluent_producer(url):
    """One librdkafka producer per process and bootstrap list (created after
    gunicorn's fork, on first use)."""
    from confluent_kafka import Producer
    key = (os.getpid(), url)
    with _PRODUCERS_LOCK:
        producer = _PRODUCERS.get(key)
        if producer is None:
            producer = Producer({
                'bootstrap.servers': url,
                'client.id': os.environ.get('INGEST_PEER_APP', 'monasca'),
                # the legacy KeyedProducer: req_acks=ACK_AFTER_LOCAL_WRITE, ack_timeout=2000
                'acks': 1,
                'request.timeout.ms': 2000,
                'enable.idempotence': False,
                'message.timeout.ms': _message_timeout_ms(),
                'linger.ms': 0,
                # no client-side size limit, as the legacy client: the broker decides
                'message.max.bytes': 1000000000,
                'compression.type': 'none',
                'error_cb': lambda err: LOG.warning('librdkafka: %s', err),
            })
            _PRODUCERS[key] = producer
        return producer


def _failed_payloads_error():
    from monasca_common.kafka_lib.common import FailedPayloadsError
    return FailedPayloadsError


class ConfluentSyncProducer(object):
    """Drop-in for monasca_common.kafka.producer.KafkaProducer."""

    def __init__(self, url):
        self._url = url

    def publish(self, topic, messages, key=None):
        from oslo_utils import encodeutils
        if not isinstance(messages, list):
            messages = [messages]
        if key is None:
            key = int(time.time() * 1000)
        messages = [encodeutils.to_utf8(m) for m in messages]
        key = bytes(str(key), 'utf-8')
        try:
            self._send(topic, key, messages)
        except Exception as ex:
            LOG.warning('Failed send on topic %s (%s), retrying once', topic, getattr(ex, 'detail', ex))
            try:
                self._send(topic, key, messages)
            except Exception as ex2:
                LOG.error('Error publishing to %s topic: %s', topic, getattr(ex2, 'detail', ex2))
                raise

    def _send(self, topic, key, messages):
        if not messages:
            return
        producer = _confluent_producer(self._url)
        errors = []

        def on_delivery(err, msg):
            if err is not None:
                errors.append(err)

        error = None
        try:
            for m in messages:
                producer.produce(topic, m, key, on_delivery=on_delivery)
        except Exception as ex:  # BufferError, KafkaException (e.g. invalid topic)
            error = 'produce() failed: %r' % (ex,)
        left = producer.flush(_message_timeout_ms() / 1000.0 + 5)
        if left:
            producer.purge()
            producer.flush(0)
            error = error or '%d of %d messages not delivered in time' % (left, len(messages))
        if errors and not error:
            error = 'delivery failed: %s' % '; '.join(str(e) for e in errors)
        if error:
            exc = _failed_payloads_error()(None)
            exc.detail = error
            raise exc


def install_kafka_producer():
    from monasca_common.kafka import producer
    producer.KafkaProducer = ConfluentSyncProducer


# ---------------------------------------------------------------------------
# The WSGI application gunicorn serves

def _only_config_file(path):
    """Make oslo.config read `path` and nothing else (no ~/.monasca,
    /etc/monasca, conf.d directories): both originals call CONF() without
    files, under gunicorn without arguments."""
    from oslo_config import cfg

    def find_config_files(project=None, prog=None, extension='.conf'):
        return [path]

    def find_config_dirs(project=None, prog=None, extension='.conf.d'):
        return []

    cfg.find_config_files = find_config_files
    cfg.find_config_dirs = find_config_dirs


def build_application():
    import paste.deploy
    kind = os.environ['INGEST_PEER_APP']
    if kind not in ('log-api', 'events-api'):
        raise ValueError('INGEST_PEER_APP must be log-api or events-api, not %r' % kind)
    _only_config_file(os.environ['INGEST_PEER_CONF'])
    install_kafka_producer()
    app = paste.deploy.loadapp('config:' + os.path.abspath(os.environ['INGEST_PEER_PASTE']))
    # ingest_peers.sh counts these lines to know that every worker loaded the app
    sys.stderr.write('ingest_peers: %s app loaded in worker %d\n' % (kind, os.getpid()))
    sys.stderr.flush()
    return app


application = build_application() if os.environ.get('INGEST_PEER_APP') else None
