export { QmpProxy, type ProxyBackend, type ProxyLogger, type QmpProxyOptions, type ProxyStats } from './server.js';
export { PassthroughProxy, type PassthroughProxyOptions } from './passthrough-thread/passthrough-proxy.js';
export { ProxyError, POLICY_ERROR_CLASS, toQmpError, type QmpErrorBody, type RefusalText } from './errors.js';
export { preparePrivateDir, prepareListenPath } from './listen-path.js';
/** The native sendmsg/SCM_RIGHTS calls to plug into a unix-socket QmpClient: `{ fdPassing: unixFdPassing }`. */
export { unixFdPassing } from '../../native/socket.js';
