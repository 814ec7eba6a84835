// vouchctl: flags and wiring only; see vouchctl_app.h.
#include <malloc.h>

#include "tenant/vouchctl_app.h"

int main(int argc, char** argv) {
  // A short-lived tool that may load a 100 MB policy and then a 30 MB log:
  // serve large blocks from the heap and keep freed memory for the next
  // step instead of unmapping it and faulting fresh zeroed pages back in
  // (about 15 % of `ima check`'s time). The process exits soon anyway.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // glibc's maximum
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  return vouch::RunApp(vouch::tenant::VouchctlAppSpec(), argc, argv,
                       vouch::tenant::RunVouchctl);
}
