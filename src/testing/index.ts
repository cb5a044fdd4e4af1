export {
  FakeQmpServer,
  FakeQmpConnection,
  type FakeQmpServerOptions,
  type FakeCommandHandler,
  type FakeCall,
  type FakeReply,
} from './fake-qmp-server.js';
export * from './private-libvirtd.js';
export * from './linux-guest.js';
