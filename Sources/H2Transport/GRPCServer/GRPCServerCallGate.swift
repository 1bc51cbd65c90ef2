import NIOCore

/// Decides whether a call may run, before its method's handler sees anything: the seam for
/// authentication, authorization and per-caller concurrency limits.
///
/// A server asks its `GRPCServer.Configuration.callGate` for one gate per connection, on the
/// connection's event loop, and calls it only on that loop; give every connection of a loop
/// the same object and it can keep plain state with no lock. Both methods run for every call:
/// they must be cheap, must not allocate per call where a cache can avoid it, and never block.
public protocol GRPCServerCallGate: AnyObject {
    /// The call's head was accepted and its method is served (`call.method` is set). Returns
    /// nil to let the call run, or the error it ends with at once (status and trailers, e.g.
    /// UNAUTHENTICATED, or RESOURCE_EXHAUSTED with retry pushback). The gate may set
    /// `call.principal` and `call.annotations.principal` for the layers above.
    func admit(_ call: GRPCServerCall) -> RPCError?
    /// A call that `admit` let run has ended, however it ended. Called exactly once per
    /// admitted call (to release what admitting it took, such as a concurrency slot).
    func admittedCallEnded(_ call: GRPCServerCall)
}

extension GRPCServerCallGate {
    public func admittedCallEnded(_ call: GRPCServerCall) {}
}
