// vouchctl: flags and wiring only; see vouchctl_app.h.
#include "tenant/vouchctl_app.h"

int main(int argc, char** argv) {
  return vouch::RunApp(vouch::tenant::VouchctlAppSpec(), argc, argv,
                       vouch::tenant::RunVouchctl);
}
