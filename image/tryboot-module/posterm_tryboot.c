// SPDX-License-Identifier: GPL-2.0
/*
 * posterm-tryboot: tells the Raspberry Pi firmware about `reboot "0 tryboot"` on Debian's kernel.
 *
 * The firmware starts autoboot.txt's [tryboot] partition for one boot only when the flag
 * RPI_FIRMWARE_SET_REBOOT_FLAGS (1) was set through its mailbox before the restart. The Raspberry
 * Pi kernel's firmware driver sets it from its reboot notifier when the restart command holds
 * "tryboot" (raspberrypi/linux pull request 3937); mainline's drivers/firmware/raspberrypi.c,
 * which Debian's linux-image-arm64 builds, has no such notifier, so with Debian's kernel every
 * tryboot restart is a plain one and an OS update is never tried (posterm docs/field.md,
 * section 6). This module adds exactly that notifier, through the two functions mainline's
 * driver exports to GPL modules: rpi_firmware_get() and rpi_firmware_property().
 *
 * On a board without the firmware node (qemu's virt machine) it loads, says so, and at a tryboot
 * restart logs that it had no firmware to tell; image/pi-firmware.sh, the firmware's stand-in in
 * the emulated boot test, starts [tryboot] only after that line, as a Pi would only after the
 * flag was sent.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/of.h>
#include <linux/printk.h>
#include <linux/reboot.h>
#include <linux/string.h>
#include <soc/bcm2835/raspberrypi-firmware.h>

/* The property tag of the Raspberry Pi kernel's RPI_FIRMWARE_SET_REBOOT_FLAGS (not in mainline's
 * enum), and its one flag. */
#define POSTERM_SET_REBOOT_FLAGS 0x00038064
#define POSTERM_REBOOT_FLAG_TRYBOOT 0x1

#define FIRMWARE_COMPATIBLE "raspberrypi,bcm2835-firmware"

/*
 * Called by kernel_restart_prepare() with the restart command, before device_shutdown(): the
 * firmware driver and its mailbox still work, and its own shutdown hook (NOTIFY_REBOOT) comes
 * after. The firmware is looked up here rather than at load: the driver may probe after us
 * (a deferred mailbox), and nothing has to be held for the box's whole uptime.
 */
static int posterm_tryboot_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	const char *command = data;
	struct device_node *node;
	struct rpi_firmware *fw;
	u32 flags = POSTERM_REBOOT_FLAG_TRYBOOT;
	int ret;

	if (action != SYS_RESTART || !command || !strstr(command, "tryboot"))
		return NOTIFY_DONE;

	/*
	 * pr_emerg, the level of the kernel's own "Restarting system with command" line that
	 * follows: these lines must reach the console whatever its log level (quiet, or the
	 * kernel.printk that procps sets), for a technician at the serial port and for the test.
	 */
	node = of_find_compatible_node(NULL, NULL, FIRMWARE_COMPATIBLE);
	if (!node) {
		pr_emerg("restart with command '%s': no Raspberry Pi firmware (%s) to tell, not a Pi\n",
			 command, FIRMWARE_COMPATIBLE);
		return NOTIFY_DONE;
	}
	fw = rpi_firmware_get(node);
	of_node_put(node);
	if (!fw) {
		pr_emerg("restart with command '%s': the Raspberry Pi firmware driver is not ready; the firmware will boot normally\n",
			 command);
		return NOTIFY_DONE;
	}
	ret = rpi_firmware_property(fw, POSTERM_SET_REBOOT_FLAGS, &flags, sizeof(flags));
	rpi_firmware_put(fw);
	if (ret)
		pr_emerg("restart with command '%s': the firmware refused the tryboot flag (%d); it will boot normally\n",
			 command, ret);
	else
		pr_emerg("restart with command '%s': tryboot flag set in the Raspberry Pi firmware\n",
			 command);
	return NOTIFY_DONE;
}

static struct notifier_block posterm_tryboot_nb = {
	.notifier_call = posterm_tryboot_notify,
};

static int __init posterm_tryboot_init(void)
{
	struct device_node *node = of_find_compatible_node(NULL, NULL, FIRMWARE_COMPATIBLE);
	int ret;

	ret = register_reboot_notifier(&posterm_tryboot_nb);
	if (ret) {
		of_node_put(node);
		return ret;
	}
	if (node)
		pr_info("loaded: a restart with \"tryboot\" in its command sets the Raspberry Pi firmware's tryboot flag (%pOF)\n",
			node);
	else
		pr_info("loaded: no Raspberry Pi firmware (%s) on this board; a tryboot restart has no firmware to tell\n",
			FIRMWARE_COMPATIBLE);
	of_node_put(node);
	return 0;
}

static void __exit posterm_tryboot_exit(void)
{
	unregister_reboot_notifier(&posterm_tryboot_nb);
}

module_init(posterm_tryboot_init);
module_exit(posterm_tryboot_exit);

MODULE_DESCRIPTION("Sets the Raspberry Pi firmware's tryboot flag on reboot \"0 tryboot\"");
MODULE_AUTHOR("posterm");
MODULE_LICENSE("GPL");
