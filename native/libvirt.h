/*
 * The libvirt, libvirt-qemu and libc functions libqemu binds, as koffi prototypes.
 * native/libvirt.ts reads this file: one declaration per `;`, `@lib <soname>` picks the library for
 * the declarations below it, `callback` declares a function-pointer type (koffi.proto).
 *
 * koffi dialect: `char *!` = a malloc'ed string koffi copies and free()s; `_Out_ T *` = out-parameter
 * (pass a one-element array). Pointer-typed names (virConnectPtr, virDomainPtr, virTypedParameterPtr, GMainLoopPtr)
 * and structs (virError, virDomainInfo, virTypedParameter) are defined in native/libvirt.ts.
 * Add a prototype here and its TypeScript signature to `LibvirtApi` in native/libvirt.ts.
 */

// @lib libvirt.so.0

// --- library, errors, event loop
int virInitialize(void);
int virGetVersion(_Out_ unsigned long *libVer, const char *type, _Out_ unsigned long *typeVer);
void virSetErrorFunc(void *userData, void *handler);
void *virGetLastError(void);
void virResetLastError(void);
int virEventRegisterDefaultImpl(void);

// --- connections
virConnectPtr virConnectOpen(const char *name);
virConnectPtr virConnectOpenReadOnly(const char *name);
int virConnectClose(virConnectPtr conn);
int virConnectIsAlive(virConnectPtr conn);
int virConnectSetKeepAlive(virConnectPtr conn, int interval, unsigned int count);
char *! virConnectGetURI(virConnectPtr conn);
char *! virConnectGetHostname(virConnectPtr conn);
int virConnectGetLibVersion(virConnectPtr conn, _Out_ unsigned long *libVer);
int virConnectGetVersion(virConnectPtr conn, _Out_ unsigned long *hvVer);
int virConnectRegisterCloseCallback(virConnectPtr conn, void *cb, void *opaque, void *freecb);
int virConnectUnregisterCloseCallback(virConnectPtr conn, void *cb);
int virConnectListAllDomains(virConnectPtr conn, _Out_ void **domains, unsigned int flags);
int virConnectDomainEventRegisterAny(virConnectPtr conn, virDomainPtr dom, int eventID, void *cb, void *opaque, void *freecb);
int virConnectDomainEventDeregisterAny(virConnectPtr conn, int callbackID);

// --- domains
virDomainPtr virDomainLookupByName(virConnectPtr conn, const char *name);
virDomainPtr virDomainLookupByUUIDString(virConnectPtr conn, const char *uuid);
virDomainPtr virDomainLookupByID(virConnectPtr conn, int id);
virDomainPtr virDomainDefineXML(virConnectPtr conn, const char *xml);
virDomainPtr virDomainCreateXML(virConnectPtr conn, const char *xml, unsigned int flags);
int virDomainRef(virDomainPtr dom);
int virDomainFree(virDomainPtr dom);
const char *virDomainGetName(virDomainPtr dom);
int virDomainGetUUIDString(virDomainPtr dom, void *buf);  // buf: 37 bytes (VIR_UUID_STRING_BUFLEN)
unsigned int virDomainGetID(virDomainPtr dom);
int virDomainGetState(virDomainPtr dom, _Out_ int *state, _Out_ int *reason, unsigned int flags);
int virDomainGetInfo(virDomainPtr dom, _Out_ virDomainInfo *info);
char *! virDomainGetXMLDesc(virDomainPtr dom, unsigned int flags);
int virDomainCreateWithFlags(virDomainPtr dom, unsigned int flags);
int virDomainShutdown(virDomainPtr dom);
int virDomainDestroy(virDomainPtr dom);
int virDomainSuspend(virDomainPtr dom);
int virDomainResume(virDomainPtr dom);
int virDomainReboot(virDomainPtr dom, unsigned int flags);
int virDomainReset(virDomainPtr dom, unsigned int flags);
int virDomainUndefine(virDomainPtr dom);
int virDomainIsActive(virDomainPtr dom);
int virDomainIsPersistent(virDomainPtr dom);
int virDomainGetMessages(virDomainPtr dom, _Out_ void **msgs, unsigned int flags);

// --- typed parameters (virTypedParameter arrays: build with Add*, release with Free)
int virTypedParamsAddInt(_Inout_ virTypedParameterPtr *params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, int value);
int virTypedParamsAddUInt(_Inout_ virTypedParameterPtr *params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, unsigned int value);
int virTypedParamsAddLLong(_Inout_ virTypedParameterPtr *params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, long long value);
int virTypedParamsAddULLong(_Inout_ virTypedParameterPtr *params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, unsigned long long value);
int virTypedParamsAddDouble(_Inout_ virTypedParameterPtr *params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, double value);
int virTypedParamsAddBoolean(_Inout_ virTypedParameterPtr *params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, int value);
int virTypedParamsAddString(_Inout_ virTypedParameterPtr *params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, const char *value);
void virTypedParamsFree(virTypedParameterPtr params, int nparams);
void virTypedParamsClear(void *params, int nparams);
void virDomainStatsRecordListFree(void *stats);

// --- migration (src/migration): the long call, its job, and its downtime limit
int virDomainMigrateToURI3(virDomainPtr domain, const char *dconnuri, void *params, unsigned int nparams, unsigned int flags);
int virDomainGetJobStats(virDomainPtr domain, _Out_ int *type, _Out_ void **params, _Out_ int *nparams, unsigned int flags);
int virDomainAbortJob(virDomainPtr domain);
int virDomainMigrateSetMaxDowntime(virDomainPtr domain, unsigned long long downtime, unsigned int flags);
int virDomainMigrateGetMaxDowntime(virDomainPtr domain, _Out_ unsigned long long *downtime, unsigned int flags);

// --- callback types (registered with koffi.register in the event-loop worker)
callback int virConnectDomainEventCallback(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque);
callback void virConnectDomainEventGenericCallback(virConnectPtr conn, virDomainPtr dom, void *opaque);
callback void virConnectDomainEventMigrationIterationCallback(virConnectPtr conn, virDomainPtr dom, int iteration, void *opaque);
callback void virConnectDomainEventJobCompletedCallback(virConnectPtr conn, virDomainPtr dom, void *params, int nparams, void *opaque);
callback void virConnectCloseFunc(virConnectPtr conn, int reason, void *opaque);
callback void virConnectDomainQemuMonitorEventCallback(virConnectPtr conn, virDomainPtr dom, const char *event, long long seconds, unsigned int micros, const char *details, void *opaque);

// @lib libvirt-qemu.so.0

int virDomainQemuMonitorCommand(virDomainPtr dom, const char *cmd, _Out_ void **result, unsigned int flags);
char *! virDomainQemuAgentCommand(virDomainPtr dom, const char *cmd, int timeout, unsigned int flags);
int virConnectDomainQemuMonitorEventRegister(virConnectPtr conn, virDomainPtr dom, const char *event, void *cb, void *opaque, void *freecb, unsigned int flags);
int virConnectDomainQemuMonitorEventDeregister(virConnectPtr conn, int callbackID);

// @lib libglib-2.0.so.0

// --- the event-loop thread: libvirt's default event implementation runs on GLib's default main context
// (virEventRunDefaultImpl is one g_main_context_iteration of it), so g_main_loop_run on a native thread
// is the loop a C program's event thread runs; quit, wake-up and acquire let the exit hook stop it
GMainLoopPtr g_main_loop_new(void *context, int isRunning);
void g_main_loop_quit(GMainLoopPtr loop);
void *g_thread_new(const char *name, void *func, void *data);
void g_main_context_wakeup(void *context);
int g_main_context_acquire(void *context);
void g_main_context_release(void *context);

// @lib libc.so.6

void free(void *ptr);
int shutdown(int fd, int how);
