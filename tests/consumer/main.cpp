// The public header compiled as C++11 (-pedantic -Werror): every declaration must be
// valid C++ and the functions must link with C linkage.
#include <bitnet.h>

#include <cstdio>
#include <cstring>

int main() {
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    bitnet_session_params sp;
    bitnet_session_default_params(&sp, sizeof sp);
    bitnet_sampler_params smp;
    bitnet_sampler_default_params(&smp, sizeof smp);
    bitnet_model *m = nullptr;
    bitnet_status st = bitnet_model_load("/nonexistent/model.gguf", &mp, &m);
    if (st != BITNET_E_IO || m != nullptr) {
        std::fprintf(stderr, "expected BITNET_E_IO, got %d (%s)\n", st, bitnet_last_error());
        return 1;
    }
    std::printf("C++ consumer: libbitnet %s, load error as expected: %s\n", bitnet_version(), bitnet_last_error());
    return std::strcmp(bitnet_version(), BITNET_VERSION_STRING) == 0 && mp.struct_size == sizeof mp ? 0 : 1;
}
