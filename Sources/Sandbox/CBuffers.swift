// CArena: C strings and pointer arrays handed to cs_spawn, freed together
// once the clone has returned (the child works on its own copy).
#if canImport(Glibc)
import Glibc
#endif

final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        let p = strdup(s)!
        allocations.append(UnsafeMutableRawPointer(p))
        return p
    }

    func optionalString(_ s: String?) -> UnsafePointer<CChar>? {
        s.map { UnsafePointer(string($0)) }
    }

    /// A NULL-terminated array of C strings.
    func stringArray(_ strings: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let raw = malloc((strings.count + 1) * MemoryLayout<UnsafeMutablePointer<CChar>?>.stride)!
        allocations.append(raw)
        let array = raw.bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: strings.count + 1)
        for (i, s) in strings.enumerated() { array[i] = string(s) }
        array[strings.count] = nil
        return array
    }

    func array<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
        let raw = malloc(max(1, values.count) * MemoryLayout<T>.stride)!
        allocations.append(raw)
        let p = raw.bindMemory(to: T.self, capacity: max(1, values.count))
        if !values.isEmpty { p.initialize(from: values, count: values.count) }
        return p
    }

    deinit {
        for p in allocations { free(p) }
    }
}

/// Starts a detached pthread with a modest stack (executions are many).
func startDedicatedThread(stackSize: Int = 512 << 10, _ body: @escaping () -> Void) -> Int32 {
    final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    defer { pthread_attr_destroy(&attr) }
    pthread_attr_setstacksize(&attr, stackSize)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    var thread = pthread_t()
    let r = pthread_create(&thread, &attr, { arg in
        Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, box)
    if r != 0 { Unmanaged<Box>.fromOpaque(box).release() }
    return r
}
