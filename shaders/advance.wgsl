// Moves the step state on by one batch (and one optimizer step when training).

struct AdvanceParams {
    count_step: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: AdvanceParams;
@group(0) @binding(1) var<storage, read_write> state: StepState;

@compute @workgroup_size(1)
fn advance() {
    state.batch = state.batch + 1u;
    if (p.count_step != 0u) {
        state.step = state.step + 1u;
    }
}
