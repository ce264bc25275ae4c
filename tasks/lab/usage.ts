/** lab:* usage text, apart from the lab code so that `armlab --help` loads none of it. */
export const LAB_USAGE = `lab:up [--nodes 3] [--name lab] [--dir DIR] [--userland armhf|amd64] [--amd64 pi3,..]
       [--link-rate 240mbit] [--uplink-rate 1gbit] [--inventory-out inventory/lab.yaml]
       [--demo: also a k3s stand-in release, fixture upstreams and a Docker Engine, so bootstrap runs offline]
lab:status [--name lab] [--dir DIR]
lab:down [--name lab] [--dir DIR]`;
